#include "plugin_base.h"

#include <exception>
#include <string>

namespace fgsa {
namespace plugin {

using nvinfer1::DataType;
using nvinfer1::TensorFormat;

namespace {

constexpr int32_t kFailure = -1;

bool isFloatType(DataType t) { return t == DataType::kFLOAT || t == DataType::kHALF; }

int32_t firstCoordInput(OpSpec const& spec) {
    for (int32_t i = 0; i < spec.nbInputs; ++i) {
        if (spec.inputs[i].role == InputRole::kCoord) return i;
    }
    return -1;
}

}  // namespace

FgsaPluginBase::FgsaPluginBase(OpSpec const& spec, LevelShapes const& levels)
    : mSpec(spec), mLevels(levels), mMetadata("spatial_shapes=" + levelsToString(levels)) {}

FgsaPluginBase::FgsaPluginBase(FgsaPluginBase const& other)
    : nvinfer1::IPluginV3(other),
      nvinfer1::IPluginV3OneCore(other),
      nvinfer1::IPluginV3OneBuild(other),
      nvinfer1::IPluginV3OneRuntime(other),
      mSpec(other.mSpec),
      mLevels(other.mLevels),
      mMetadata(other.mMetadata) {}  // the field collection is rebuilt per call, so nothing points into `other`

void FgsaPluginBase::logError(char const* method, char const* what) const noexcept {
    logMessage(nvinfer1::ILogger::Severity::kERROR, std::string(mSpec.pluginName) + "::" + method + ": " + what);
}

// Every entry point runs its body through this: exceptions become an error code and a log line.
// (Variadic so that commas inside the body need no extra parentheses.)
#define FGSA_PLUGIN_GUARD(method, failure_value, ...)                    \
    try {                                                                \
        __VA_ARGS__                                                      \
    } catch (std::exception const& e) {                                  \
        logError(method, e.what());                                      \
    } catch (...) {                                                      \
        logError(method, "unknown exception");                           \
    }                                                                    \
    return failure_value;

nvinfer1::IPluginCapability* FgsaPluginBase::getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept {
    FGSA_PLUGIN_GUARD("getCapabilityInterface", nullptr, {
        if (type == nvinfer1::PluginCapabilityType::kBUILD) return static_cast<nvinfer1::IPluginV3OneBuild*>(this);
        if (type == nvinfer1::PluginCapabilityType::kRUNTIME) return static_cast<nvinfer1::IPluginV3OneRuntime*>(this);
        if (type == nvinfer1::PluginCapabilityType::kCORE) return static_cast<nvinfer1::IPluginV3OneCore*>(this);
        throw PluginError("unknown capability type " + std::to_string(static_cast<int32_t>(type)));
    })
}

nvinfer1::AsciiChar const* FgsaPluginBase::getPluginName() const noexcept { return mSpec.pluginName; }
nvinfer1::AsciiChar const* FgsaPluginBase::getPluginVersion() const noexcept { return kPluginVersion; }
nvinfer1::AsciiChar const* FgsaPluginBase::getPluginNamespace() const noexcept { return kPluginNamespace; }

void FgsaPluginBase::checkCounts(int32_t nbInputs, int32_t nbOutputs) const {
    if (nbInputs != mSpec.nbInputs || nbOutputs != 1) {
        throw PluginError("expected " + std::to_string(mSpec.nbInputs) + " inputs and 1 output, got " +
                          std::to_string(nbInputs) + " inputs and " + std::to_string(nbOutputs) + " outputs");
    }
}

ShapeSet FgsaPluginBase::collectDims(nvinfer1::PluginTensorDesc const* in) const {
    ShapeSet dims{};
    for (int32_t i = 0; i < mSpec.nbInputs; ++i) {
        concreteDims(in[i].dims, mSpec.inputs[i].rank, mSpec.inputs[i].name, dims[i].data());
    }
    return dims;
}

void FgsaPluginBase::checkOutput(ShapeSet const& dims, nvinfer1::PluginTensorDesc const& out) const {
    int64_t const q = mSpec.queryInput;
    int64_t const want[3] = {dims[q][0], dims[q][1], dims[0][2] * dims[0][3]};
    int64_t got[3];
    concreteDims(out.dims, 3, "output", got);
    for (int i = 0; i < 3; ++i) {
        if (got[i] != want[i]) {
            throw PluginError("output: expected shape " + std::string(ShapeText(want, 3).text) + ", got " +
                              ShapeText(got, 3).text);
        }
    }
}

int32_t FgsaPluginBase::configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
                                        nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept {
    FGSA_PLUGIN_GUARD("configurePlugin", kFailure, {
        checkCounts(nbInputs, nbOutputs);
        ShapeSet dims{};
        for (int32_t i = 0; i < nbInputs; ++i) {
            nvinfer1::Dims const& d = in[i].desc.dims;
            if (d.nbDims != mSpec.inputs[i].rank) {
                throw PluginError(std::string(mSpec.inputs[i].name) + ": expected rank " +
                                  std::to_string(mSpec.inputs[i].rank) + ", got rank " + std::to_string(d.nbDims));
            }
            for (int32_t a = 0; a < d.nbDims; ++a) dims[i][a] = d.d[a] < 0 ? -1 : d.d[a];
        }
        checkBuildDims(dims);
        (void)out;
        return 0;
    })
}

void FgsaPluginBase::requireDim(ShapeSet const& dims, DimRef d, int64_t expected, char const* meaning) const {
    int64_t const got = dims[d.input][d.axis];
    if (got >= 0 && got != expected) {
        throw PluginError(std::string(mSpec.inputs[d.input].name) + ": expected dimension " + std::to_string(d.axis) +
                          " (" + meaning + ") = " + std::to_string(expected) + ", got " + std::to_string(got));
    }
}

void FgsaPluginBase::requireEqual(ShapeSet const& dims, std::initializer_list<DimRef> refs, char const* meaning) const {
    DimRef const* first = nullptr;
    for (DimRef const& r : refs) {
        if (dims[r.input][r.axis] < 0) continue;
        if (first == nullptr) {
            first = &r;
        } else if (dims[r.input][r.axis] != dims[first->input][first->axis]) {
            throw PluginError(std::string(meaning) + ": " + mSpec.inputs[first->input].name + " dimension " +
                              std::to_string(first->axis) + " is " + std::to_string(dims[first->input][first->axis]) +
                              " but " + mSpec.inputs[r.input].name + " dimension " + std::to_string(r.axis) + " is " +
                              std::to_string(dims[r.input][r.axis]) + "; they must be equal");
        }
    }
}

int32_t FgsaPluginBase::getOutputDataTypes(DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes,
                                           int32_t nbInputs) const noexcept {
    FGSA_PLUGIN_GUARD("getOutputDataTypes", kFailure, {
        checkCounts(nbInputs, nbOutputs);
        if (!isFloatType(inputTypes[0])) throw PluginError("value: expected FP32 or FP16");
        outputTypes[0] = inputTypes[0];
        return 0;
    })
}

int32_t FgsaPluginBase::getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs,
                                        nvinfer1::DimsExprs const* /*shapeInputs*/, int32_t /*nbShapeInputs*/,
                                        nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
                                        nvinfer1::IExprBuilder& exprBuilder) noexcept {
    FGSA_PLUGIN_GUARD("getOutputShapes", kFailure, {
        checkCounts(nbInputs, nbOutputs);
        for (int32_t i = 0; i < nbInputs; ++i) {
            if (inputs[i].nbDims != mSpec.inputs[i].rank) {
                throw PluginError(std::string(mSpec.inputs[i].name) + ": expected rank " +
                                  std::to_string(mSpec.inputs[i].rank) + ", got rank " +
                                  std::to_string(inputs[i].nbDims));
            }
        }
        nvinfer1::DimsExprs const& q = inputs[mSpec.queryInput];
        outputs[0].nbDims = 3;
        outputs[0].d[0] = q.d[0];
        outputs[0].d[1] = q.d[1];
        outputs[0].d[2] = exprBuilder.operation(nvinfer1::DimensionOperation::kPROD, *inputs[0].d[2], *inputs[0].d[3]);
        return 0;
    })
}

bool FgsaPluginBase::supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut,
                                               int32_t nbInputs, int32_t nbOutputs) noexcept {
    FGSA_PLUGIN_GUARD("supportsFormatCombination", false, {
        checkCounts(nbInputs, nbOutputs);
        if (pos < 0 || pos >= nbInputs + nbOutputs) return false;
        nvinfer1::PluginTensorDesc const& d = inOut[pos].desc;
        if (d.format != TensorFormat::kLINEAR) return false;
        if (pos == nbInputs) return d.type == inOut[0].desc.type;  // output follows value
        switch (mSpec.inputs[pos].role) {
            case InputRole::kValue: return isFloatType(d.type);
            case InputRole::kIndex: return d.type == DataType::kINT32;
            case InputRole::kCoord: {
                int32_t const first = firstCoordInput(mSpec);
                return isFloatType(d.type) && (pos == first || d.type == inOut[first].desc.type);
            }
        }
        return false;
    })
}

int32_t FgsaPluginBase::getNbOutputs() const noexcept { return 1; }

size_t FgsaPluginBase::getWorkspaceSize(nvinfer1::DynamicPluginTensorDesc const* /*inputs*/, int32_t /*nbInputs*/,
                                        nvinfer1::DynamicPluginTensorDesc const* /*outputs*/,
                                        int32_t /*nbOutputs*/) const noexcept {
    return 0;  // the kernels write the output directly, with no scratch memory
}

char const* FgsaPluginBase::getTimingCacheID() noexcept { return mMetadata.c_str(); }
char const* FgsaPluginBase::getMetadataString() noexcept { return mMetadata.c_str(); }

int32_t FgsaPluginBase::onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs,
                                      nvinfer1::PluginTensorDesc const* out, int32_t nbOutputs) noexcept {
    FGSA_PLUGIN_GUARD("onShapeChange", kFailure, {
        checkCounts(nbInputs, nbOutputs);
        ShapeSet const dims = collectDims(in);
        checkShapes(dims);
        checkOutput(dims, out[0]);
        return 0;
    })
}

int32_t FgsaPluginBase::enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* outputDesc,
                                void const* const* inputs, void* const* outputs, void* /*workspace*/,
                                cudaStream_t stream) noexcept {
    FGSA_PLUGIN_GUARD("enqueue", static_cast<int32_t>(cudaErrorInvalidValue), {
        ShapeSet const dims = collectDims(inputDesc);
        checkOutput(dims, outputDesc[0]);
        if (outputDesc[0].type != inputDesc[0].type) throw PluginError("output: expected the value's data type");
        cudaError_t const status = launch(dims, inputDesc, inputs, outputs[0], stream);
        if (status != cudaSuccess) logError("enqueue", cudaGetErrorString(status));
        return static_cast<int32_t>(status);
    })
}

nvinfer1::IPluginV3* FgsaPluginBase::attachToContext(nvinfer1::IPluginResourceContext* /*context*/) noexcept {
    return clone();  // no per-context resources
}

nvinfer1::PluginFieldCollection const* FgsaPluginBase::getFieldsToSerialize() noexcept {
    FGSA_PLUGIN_GUARD("getFieldsToSerialize", nullptr, {
        for (int32_t l = 0; l < mLevels.num_levels; ++l) {
            mSerialShapes[2 * l] = mLevels.height[l];
            mSerialShapes[2 * l + 1] = mLevels.width[l];
        }
        mField = nvinfer1::PluginField(kSpatialShapesField, mSerialShapes.data(), nvinfer1::PluginFieldType::kINT32,
                                       2 * mLevels.num_levels);
        mFieldCollection.nbFields = 1;
        mFieldCollection.fields = &mField;
        return &mFieldCollection;
    })
}

#undef FGSA_PLUGIN_GUARD

}  // namespace plugin
}  // namespace fgsa
