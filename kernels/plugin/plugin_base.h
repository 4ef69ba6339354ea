// What the two plugins share: IPluginV3 with the OneCore, OneBuild and OneRuntime capabilities, the
// `spatial_shapes` attribute, format combinations, output shape [X0, X1, value2 * value3], serialization and
// the try/catch around every TensorRT entry point (FgsaPluginBase); clone, shape check and launch written
// once over the op's params (OpPlugin). An op adds its input table, its describe/bind/run functions and its
// build-time dims check.
//
// Format combinations (all TensorFormat::kLINEAR):
//   value (input 0) FP32 or FP16; the output has the value's type;
//   coordinate inputs (locations, weights, reference points, offsets, logits) FP32 or FP16, all the same,
//   chosen independently of the value type (FP16 values with FP32 coordinates is the precision policy);
//   links INT32.
#pragma once

#include <NvInferRuntime.h>
#include <cuda_runtime_api.h>

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "fgsa/params.h"
#include "fgsa/shapes.h"
#include "plugin_names.h"
#include "plugin_utils.h"

namespace fgsa {
namespace plugin {

enum class InputRole { kValue, kCoord, kIndex };

struct InputSpec {
    char const* name;
    int32_t rank;
    InputRole role;
};

constexpr int32_t kMaxInputs = 5;
constexpr int32_t kMaxRank = 8;

struct OpSpec {
    char const* pluginName;
    std::array<InputSpec, kMaxInputs> inputs;
    int32_t nbInputs;
    // The output is [in[queryInput].d0, in[queryInput].d1, value.d2 * value.d3].
    int32_t queryInput;
};

// Concrete dims of every input, indexed [input][dim].
using ShapeSet = std::array<std::array<int64_t, kMaxRank>, kMaxInputs>;

class FgsaPluginBase : public nvinfer1::IPluginV3,
                       public nvinfer1::IPluginV3OneCore,
                       public nvinfer1::IPluginV3OneBuild,
                       public nvinfer1::IPluginV3OneRuntime {
public:
    FgsaPluginBase(OpSpec const& spec, LevelShapes const& levels);
    FgsaPluginBase(FgsaPluginBase const& other);
    FgsaPluginBase& operator=(FgsaPluginBase const&) = delete;
    ~FgsaPluginBase() override = default;

    // IPluginV3
    nvinfer1::IPluginCapability* getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept override;

    // IPluginV3OneCore
    nvinfer1::AsciiChar const* getPluginName() const noexcept override;
    nvinfer1::AsciiChar const* getPluginVersion() const noexcept override;
    nvinfer1::AsciiChar const* getPluginNamespace() const noexcept override;

    // IPluginV3OneBuild
    int32_t configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
                            nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept override;
    int32_t getOutputDataTypes(nvinfer1::DataType* outputTypes, int32_t nbOutputs,
                               nvinfer1::DataType const* inputTypes, int32_t nbInputs) const noexcept override;
    int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs, nvinfer1::DimsExprs const* shapeInputs,
                            int32_t nbShapeInputs, nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
                            nvinfer1::IExprBuilder& exprBuilder) noexcept override;
    bool supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
                                   int32_t nbOutputs) noexcept override;
    int32_t getNbOutputs() const noexcept override;
    size_t getWorkspaceSize(nvinfer1::DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
                            nvinfer1::DynamicPluginTensorDesc const* outputs, int32_t nbOutputs) const noexcept override;
    char const* getTimingCacheID() noexcept override;
    char const* getMetadataString() noexcept override;

    // IPluginV3OneRuntime
    int32_t onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs, nvinfer1::PluginTensorDesc const* out,
                          int32_t nbOutputs) noexcept override;
    int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* outputDesc,
                    void const* const* inputs, void* const* outputs, void* workspace,
                    cudaStream_t stream) noexcept override;
    nvinfer1::IPluginV3* attachToContext(nvinfer1::IPluginResourceContext* context) noexcept override;
    nvinfer1::PluginFieldCollection const* getFieldsToSerialize() noexcept override;

protected:
    // Full shape check of concrete input dims (throws PluginError with a message naming the tensor).
    virtual void checkShapes(ShapeSet const& dims) const = 0;
    // Build-time check (configurePlugin): dims are the network's, -1 where the optimization profile leaves a
    // dimension to run time. Checks only what the op needs and what is already known: sizes fixed by the
    // attributes (Len_in, L, the coordinate pair) and equalities between static dims. Profile maxima are
    // not compared with each other: inputs may have independent maxima, and every concrete shape is checked
    // again in onShapeChange and enqueue.
    virtual void checkBuildDims(ShapeSet const& dims) const = 0;

    // Helpers of checkBuildDims; a dim < 0 is unknown and satisfies every check.
    struct DimRef {
        int32_t input;
        int32_t axis;
    };
    void requireDim(ShapeSet const& dims, DimRef d, int64_t expected, char const* meaning) const;
    void requireEqual(ShapeSet const& dims, std::initializer_list<DimRef> refs, char const* meaning) const;
    // Fills the op's params from concrete dims, types and pointers and calls its launcher.
    virtual cudaError_t launch(ShapeSet const& dims, nvinfer1::PluginTensorDesc const* inputDesc,
                               void const* const* inputs, void* output, cudaStream_t stream) const = 0;

    LevelShapes const& levels() const { return mLevels; }

private:
    void checkCounts(int32_t nbInputs, int32_t nbOutputs) const;
    // Copies descs' dims into a ShapeSet (all concrete) after checking ranks.
    ShapeSet collectDims(nvinfer1::PluginTensorDesc const* in) const;
    void checkOutput(ShapeSet const& dims, nvinfer1::PluginTensorDesc const& out) const;
    void logError(char const* method, char const* what) const noexcept;

    OpSpec const& mSpec;
    LevelShapes mLevels;
    std::string mMetadata;
    std::array<int32_t, 2 * kMaxLevels> mSerialShapes{};
    nvinfer1::PluginField mField;
    nvinfer1::PluginFieldCollection mFieldCollection{};
};

// The part of a plugin that only names its op, written once: clone, the full shape check and the launch.
// Derived (the op's plugin) provides
//   static OpSpec const& spec();
//   static Status describe(ShapeSet const& dims, LevelShapes const& levels, Params* p);  // fgsa/shapes.h
//   static void bind(PluginTensorDesc const* inputDesc, void const* const* inputs, Params* p);  // pointers, types
//   static cudaError_t run(Params const& p, cudaStream_t stream);  // the op's launcher (fgsa/launch.h)
// and checkBuildDims.
template <typename Derived, typename Params>
class OpPlugin : public FgsaPluginBase {
public:
    explicit OpPlugin(LevelShapes const& levels) : FgsaPluginBase(Derived::spec(), levels) {}

    nvinfer1::IPluginV3* clone() noexcept override {
        try {
            return new Derived(static_cast<Derived const&>(*this));
        } catch (...) {
            logMessage(nvinfer1::ILogger::Severity::kERROR, std::string(Derived::spec().pluginName) + "::clone failed");
        }
        return nullptr;
    }

protected:
    void checkShapes(ShapeSet const& dims) const override {
        Params p{};
        throwIfFailed(Derived::describe(dims, levels(), &p));
    }

    cudaError_t launch(ShapeSet const& dims, nvinfer1::PluginTensorDesc const* inputDesc, void const* const* inputs,
                       void* output, cudaStream_t stream) const override {
        Params p{};
        throwIfFailed(Derived::describe(dims, levels(), &p));
        Derived::bind(inputDesc, inputs, &p);
        p.output = output;
        return Derived::run(p, stream);
    }
};

// Creator of plugin type P (P(LevelShapes) constructor, P::spec() for the names).
template <typename P>
class FgsaPluginCreator : public nvinfer1::IPluginCreatorV3One {
public:
    FgsaPluginCreator() noexcept {
        mFields[0] = nvinfer1::PluginField(kSpatialShapesField, nullptr, nvinfer1::PluginFieldType::kINT32, 0);
        mFieldCollection.nbFields = 1;
        mFieldCollection.fields = mFields.data();
    }

    nvinfer1::IPluginV3* createPlugin(nvinfer1::AsciiChar const* name, nvinfer1::PluginFieldCollection const* fc,
                                      nvinfer1::TensorRTPhase /*phase*/) noexcept override {
        try {
            return new P(parseSpatialShapes(fc, P::spec().pluginName));
        } catch (std::exception const& e) {
            logMessage(nvinfer1::ILogger::Severity::kERROR, std::string(P::spec().pluginName) + " createPlugin(" +
                                                                (name ? name : "") + "): " + e.what());
        } catch (...) {
            logMessage(nvinfer1::ILogger::Severity::kERROR, std::string(P::spec().pluginName) + " createPlugin: unknown error");
        }
        return nullptr;
    }

    nvinfer1::PluginFieldCollection const* getFieldNames() noexcept override { return &mFieldCollection; }
    nvinfer1::AsciiChar const* getPluginName() const noexcept override { return P::spec().pluginName; }
    nvinfer1::AsciiChar const* getPluginVersion() const noexcept override { return kPluginVersion; }
    nvinfer1::AsciiChar const* getPluginNamespace() const noexcept override { return kPluginNamespace; }

private:
    std::array<nvinfer1::PluginField, 1> mFields;
    nvinfer1::PluginFieldCollection mFieldCollection{};
};

}  // namespace plugin
}  // namespace fgsa
