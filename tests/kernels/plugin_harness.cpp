// Drives the TensorRT plugin's methods on the CPU, without TensorRT's libraries or a GPU:
//   - the creators come from the library's own getCreators() (registration.cpp of the default build: no
//     load-time registration, so getCreators hands out both; getPluginRegistry() is stubbed to nullptr in
//     case a build with FGSA_REGISTER_AT_LOAD links this harness);
//   - IExprBuilder / IDimensionExpr are backed by constant-only fakes of TensorRT's apiv interfaces;
//   - the launchers are replaced by host stubs that record the params and run the shared sampling math on
//     host memory (FP32), so enqueue's pointer, shape and dtype plumbing is checked end to end.
// Prints one line per check; the exit status is the number of failed checks. Built by CMake as
// fgsa_plugin_harness when TensorRT headers are found; run by tests/kernels/test_plugin_compiles.py.
#include <NvInferRuntime.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "fgsa/launch.h"
#include "fgsa/sampling.h"
#include "fgsa/shapes.h"
#include "plugin_names.h"

using namespace nvinfer1;

extern "C" IPluginCreatorInterface* const* getCreators(int32_t& nbCreators);
extern "C" IPluginRegistry* getPluginRegistry() noexcept { return nullptr; }

// ---- launcher stubs -------------------------------------------------------------------------------------
namespace {
fgsa::MsdaParams gLastMsda{};
fgsa::FgsaParams gLastFgsa{};
int gMsdaCalls = 0, gFgsaCalls = 0;

template <typename Params, typename Partial, typename Offset>
void runHost(Params const& p, int64_t items, Partial partial, Offset offset) {
    if (p.value_type != fgsa::DType::kFloat32 || p.coord_type != fgsa::DType::kFloat32) return;  // recorded only
    for (int64_t item = 0; item < items; ++item) {
        for (int32_t c = 0; c < p.head_dim; ++c) {
            float acc[1] = {0.f};
            partial(p, item, 0, 1, c, acc);
            static_cast<float*>(p.output)[offset(p, item, c)] = acc[0];
        }
    }
}
}  // namespace

namespace fgsa {
cudaError_t launch_msda(const MsdaParams& p, cudaStream_t, LaunchConfig) {
    gLastMsda = p;
    ++gMsdaCalls;
    if (!check_params(p).ok) return cudaErrorInvalidValue;
    runHost(p, msda_items(p), msda_partial<1, float, float, float>, msda_out_offset);
    return cudaSuccess;
}
cudaError_t launch_fgsa_attention(const FgsaParams& p, cudaStream_t, LaunchConfig) {
    gLastFgsa = p;
    ++gFgsaCalls;
    if (!check_params(p).ok) return cudaErrorInvalidValue;
    runHost(p, fgsa_items(p), fgsa_partial<1, float, float, float>, fgsa_out_offset);
    return cudaSuccess;
}
}  // namespace fgsa

// ---- fake dimension expressions ----------------------------------------------------------------------------
namespace {
class ConstImpl : public apiv::VDimensionExpr {
public:
    explicit ConstImpl(int64_t v) : mValue(v) {}
    bool isConstant() const override { return true; }
    int64_t getConstantValue() const override { return mValue; }
    bool isSizeTensor() const override { return false; }

private:
    int64_t mValue;
};

class ConstExpr : public IDimensionExpr {
public:
    explicit ConstExpr(int64_t v) : mConst(v) { mImpl = &mConst; }

private:
    ConstImpl mConst;
};

class BuilderImpl : public apiv::VExprBuilder {
public:
    IDimensionExpr const* constant(int64_t v) override { return &mStore.emplace_back(v); }
    IDimensionExpr const* operation(DimensionOperation op, IDimensionExpr const& a, IDimensionExpr const& b) override {
        int64_t const x = a.getConstantValue(), y = b.getConstantValue();
        return constant(op == DimensionOperation::kPROD ? x * y : op == DimensionOperation::kSUM ? x + y : -1);
    }
    IDimensionExpr const* declareSizeTensor(int32_t, IDimensionExpr const&, IDimensionExpr const&) override {
        return nullptr;
    }

private:
    std::deque<ConstExpr> mStore;
};

class FakeBuilder : public IExprBuilder {
public:
    FakeBuilder() { mImpl = &mBuilder; }

private:
    BuilderImpl mBuilder;
};

// ---- checks ------------------------------------------------------------------------------------------------
int gFailures = 0;

void check(bool ok, std::string const& what) {
    std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
    if (!ok) ++gFailures;
}

Dims dimsOf(std::vector<int64_t> const& v) {
    Dims d{};
    d.nbDims = static_cast<int32_t>(v.size());
    for (size_t i = 0; i < v.size(); ++i) d.d[i] = v[i];
    return d;
}

struct OpCase {
    char const* name;
    std::vector<std::vector<int64_t>> inputs;  // shapes
    std::vector<DataType> roleTypes;           // per input: kFLOAT for value/coord, kINT32 for index
    std::vector<int64_t> output;
};

const std::vector<int64_t> kShapes = {8, 8, 16, 16, 32, 32};
constexpr int64_t kLen = 64 + 256 + 1024;

OpCase msdaCase() {
    return {fgsa::plugin::kMsdaPluginName,
            {{2, kLen, 8, 32}, {2, 70, 8, 3, 4, 2}, {2, 70, 8, 3, 4}},
            {DataType::kFLOAT, DataType::kFLOAT, DataType::kFLOAT},
            {2, 70, 256}};
}

OpCase fgsaCase() {
    return {fgsa::plugin::kFgsaAttentionPluginName,
            {{2, kLen, 64, 32}, {2, 70, 2}, {2, 70, 8}, {2, 70, 64, 3, 4, 2}, {2, 70, 64, 12}},
            {DataType::kFLOAT, DataType::kFLOAT, DataType::kINT32, DataType::kFLOAT, DataType::kFLOAT},
            {2, 70, 2048}};
}

IPluginCreatorV3One* findCreator(char const* name) {
    int32_t n = 0;
    IPluginCreatorInterface* const* list = getCreators(n);
    for (int32_t i = 0; i < n; ++i) {
        auto* c = static_cast<IPluginCreatorV3One*>(list[i]);
        if (std::strcmp(c->getPluginName(), name) == 0) return c;
    }
    return nullptr;
}

std::unique_ptr<IPluginV3> create(IPluginCreatorV3One* creator, PluginField const* fields, int32_t n,
                                  TensorRTPhase phase = TensorRTPhase::kBUILD) {
    PluginFieldCollection fc{n, fields};
    return std::unique_ptr<IPluginV3>(creator->createPlugin("node", &fc, phase));
}

std::unique_ptr<IPluginV3> createDefault(IPluginCreatorV3One* creator) {
    std::vector<int32_t> shapes(kShapes.begin(), kShapes.end());
    PluginField f(fgsa::plugin::kSpatialShapesField, shapes.data(), PluginFieldType::kINT32, 6);
    return create(creator, &f, 1);
}

// Counts full format combinations accepted position by position, over a few types and two formats.
int countCombinations(IPluginV3OneBuild* build, int32_t nbInputs) {
    int32_t const n = nbInputs + 1;
    DataType const types[] = {DataType::kFLOAT, DataType::kHALF, DataType::kINT32, DataType::kINT8};
    TensorFormat const formats[] = {TensorFormat::kLINEAR, TensorFormat::kCHW32};
    std::vector<DynamicPluginTensorDesc> io(static_cast<size_t>(n));
    int count = 0;
    std::function<void(int32_t)> rec = [&](int32_t pos) {
        if (pos == n) {
            ++count;
            return;
        }
        for (DataType t : types) {
            for (TensorFormat f : formats) {
                io[pos].desc.type = t;
                io[pos].desc.format = f;
                if (build->supportsFormatCombination(pos, io.data(), nbInputs, 1)) rec(pos + 1);
            }
        }
    };
    rec(0);
    return count;
}

void testOp(OpCase const& oc) {
    std::string const op = oc.name;
    IPluginCreatorV3One* creator = findCreator(oc.name);
    check(creator != nullptr, op + ": getCreators returns its creator");
    if (!creator) return;
    check(std::string(creator->getPluginVersion()) == "1" && std::string(creator->getPluginNamespace()).empty(),
          op + ": creator version 1, namespace empty");
    PluginFieldCollection const* names = creator->getFieldNames();
    check(names && names->nbFields == 1 && std::strcmp(names->fields[0].name, "spatial_shapes") == 0,
          op + ": creator field names = [spatial_shapes]");

    // Attribute parsing: INT64 accepted; missing, odd-length and zero sizes rejected without throwing.
    std::vector<int64_t> s64 = kShapes;
    PluginField f64(fgsa::plugin::kSpatialShapesField, s64.data(), PluginFieldType::kINT64, 6);
    check(create(creator, &f64, 1) != nullptr, op + ": spatial_shapes as INT64 accepted");
    check(create(creator, nullptr, 0) == nullptr, op + ": missing spatial_shapes -> nullptr");
    std::vector<int32_t> odd = {8, 8, 16};
    PluginField fodd(fgsa::plugin::kSpatialShapesField, odd.data(), PluginFieldType::kINT32, 3);
    check(create(creator, &fodd, 1) == nullptr, op + ": odd-length spatial_shapes -> nullptr");
    std::vector<int32_t> zero = {8, 0};
    PluginField fzero(fgsa::plugin::kSpatialShapesField, zero.data(), PluginFieldType::kINT32, 2);
    check(create(creator, &fzero, 1) == nullptr, op + ": zero-sized level -> nullptr");

    std::unique_ptr<IPluginV3> plugin = createDefault(creator);
    check(plugin != nullptr, op + ": createPlugin with INT32 spatial_shapes");
    if (!plugin) return;
    auto* core = static_cast<IPluginV3OneCore*>(plugin->getCapabilityInterface(PluginCapabilityType::kCORE));
    auto* build = static_cast<IPluginV3OneBuild*>(plugin->getCapabilityInterface(PluginCapabilityType::kBUILD));
    auto* runtime = static_cast<IPluginV3OneRuntime*>(plugin->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
    check(core && build && runtime, op + ": core, build and runtime capabilities");
    check(std::string(core->getPluginName()) == op && std::string(core->getPluginVersion()) == "1",
          op + ": core name and version");
    int32_t const nIn = static_cast<int32_t>(oc.inputs.size());

    // Output data types follow the value.
    std::vector<DataType> inTypes = oc.roleTypes;
    DataType out = DataType::kINT8;
    check(build->getNbOutputs() == 1 && build->getOutputDataTypes(&out, 1, inTypes.data(), nIn) == 0 &&
              out == DataType::kFLOAT, op + ": getOutputDataTypes FP32 -> FP32");
    inTypes[0] = DataType::kHALF;
    check(build->getOutputDataTypes(&out, 1, inTypes.data(), nIn) == 0 && out == DataType::kHALF,
          op + ": getOutputDataTypes FP16 -> FP16");
    inTypes[0] = DataType::kINT32;
    check(build->getOutputDataTypes(&out, 1, inTypes.data(), nIn) != 0, op + ": INT32 value rejected");

    int const combos = countCombinations(build, nIn);
    check(combos == 4, op + ": 4 format combinations (value FP32/FP16 x coords FP32/FP16), got " + std::to_string(combos));

    // Output shape expressions.
    FakeBuilder fb;
    std::vector<DimsExprs> exprs(oc.inputs.size());
    for (size_t i = 0; i < oc.inputs.size(); ++i) {
        exprs[i].nbDims = static_cast<int32_t>(oc.inputs[i].size());
        for (size_t d = 0; d < oc.inputs[i].size(); ++d) exprs[i].d[d] = fb.constant(oc.inputs[i][d]);
    }
    DimsExprs outExpr{};
    bool shapeOk = build->getOutputShapes(exprs.data(), nIn, nullptr, 0, &outExpr, 1, fb) == 0 && outExpr.nbDims == 3;
    for (int d = 0; shapeOk && d < 3; ++d) shapeOk = outExpr.d[d]->getConstantValue() == oc.output[d];
    check(shapeOk, op + ": getOutputShapes = [" + std::to_string(oc.output[0]) + ", " + std::to_string(oc.output[1]) +
                       ", " + std::to_string(oc.output[2]) + "]");
    exprs[1].nbDims -= 1;
    check(build->getOutputShapes(exprs.data(), nIn, nullptr, 0, &outExpr, 1, fb) != 0, op + ": wrong rank rejected");

    // configurePlugin: the network's dims (-1 = left to the profile) are checked where the op needs them;
    // profile maxima of different inputs are independent and never compared.
    auto configure = [&](std::vector<std::vector<int64_t>> const& dims, std::vector<std::vector<int64_t>> const& maxima,
                         int32_t nbInputs) {
        std::vector<DynamicPluginTensorDesc> dyn(oc.inputs.size() + 1);
        for (size_t i = 0; i < oc.inputs.size(); ++i) {
            dyn[i].desc.dims = dimsOf(dims[i]);
            dyn[i].desc.type = oc.roleTypes[i];
            dyn[i].min = dimsOf(dims[i]);
            dyn[i].opt = dimsOf(maxima[i]);
            dyn[i].max = dimsOf(maxima[i]);
        }
        dyn.back().desc.dims = dimsOf(oc.output);
        dyn.back().max = dimsOf(oc.output);
        return build->configurePlugin(dyn.data(), nbInputs, &dyn.back(), 1);
    };
    check(configure(oc.inputs, oc.inputs, nIn) == 0, op + ": configurePlugin accepts static valid dims");
    // Dynamic batch and query/keypoint dims (axis 0 of every input, axis 1 of every input but value) with a
    // different profile maximum per input, and a dynamic value length.
    std::vector<std::vector<int64_t>> dynDims = oc.inputs, maxima = oc.inputs;
    for (size_t i = 0; i < oc.inputs.size(); ++i) {
        dynDims[i][0] = -1;
        maxima[i][0] = 8 + static_cast<int64_t>(i);
        if (i > 0) {
            dynDims[i][1] = -1;
            maxima[i][1] = 100 + 7 * static_cast<int64_t>(i);
        }
    }
    check(configure(dynDims, maxima, nIn) == 0, op + ": configurePlugin accepts independent profile maxima per input");
    dynDims[0][1] = -1;
    maxima[0][1] = 5000;
    check(configure(dynDims, maxima, nIn) == 0, op + ": configurePlugin accepts a dynamic value length");
    std::vector<std::vector<int64_t>> bad = oc.inputs;
    bad[0][1] = kLen - 1;
    check(configure(bad, bad, nIn) != 0, op + ": configurePlugin rejects a static Len_in != sum H*W");
    bad = dynDims;
    bad[1][2] += 1;
    check(configure(bad, maxima, nIn) != 0, op + ": configurePlugin rejects a static dim 2 of input 1 that does not fit");
    bad = dynDims;
    bad.back().back() += 1;
    check(configure(bad, maxima, nIn) != 0, op + ": configurePlugin rejects a static last dim of the last input (P or L*P)");
    bad = oc.inputs;
    bad[1].pop_back();
    check(configure(bad, bad, nIn) != 0, op + ": configurePlugin rejects a wrong rank");
    check(configure(oc.inputs, oc.inputs, nIn - 1) != 0, op + ": wrong input count rejected");

    // Serialization round trip through the runtime phase, and clone / attachToContext.
    PluginFieldCollection const* ser = runtime->getFieldsToSerialize();
    check(ser && ser->nbFields == 1 && ser->fields[0].type == PluginFieldType::kINT32 && ser->fields[0].length == 6 &&
              std::memcmp(ser->fields[0].data, std::vector<int32_t>(kShapes.begin(), kShapes.end()).data(), 24) == 0,
          op + ": getFieldsToSerialize = spatial_shapes INT32 x6");
    std::unique_ptr<IPluginV3> restored = create(creator, ser->fields, ser->nbFields, TensorRTPhase::kRUNTIME);
    check(restored != nullptr, op + ": createPlugin(kRUNTIME) from serialized fields");
    std::unique_ptr<IPluginV3> attached(runtime->attachToContext(nullptr));
    std::string const meta = build->getMetadataString();
    plugin.reset();  // the clone must not depend on the original
    check(attached != nullptr && meta == "spatial_shapes=[8, 8, 16, 16, 32, 32]", op + ": attachToContext clone, metadata " + meta);
    if (!attached) return;
    runtime = static_cast<IPluginV3OneRuntime*>(attached->getCapabilityInterface(PluginCapabilityType::kRUNTIME));

    // onShapeChange and enqueue with host buffers (the launcher stub computes FP32 on the host).
    std::vector<PluginTensorDesc> desc(oc.inputs.size() + 1);
    std::vector<std::vector<float>> buffers;
    std::vector<void const*> ptrs;
    for (size_t i = 0; i < oc.inputs.size(); ++i) {
        desc[i].dims = dimsOf(oc.inputs[i]);
        desc[i].type = oc.roleTypes[i];
        desc[i].format = TensorFormat::kLINEAR;
        int64_t n = 1;
        for (int64_t d : oc.inputs[i]) n *= d;
        buffers.emplace_back(static_cast<size_t>(n), 0.25f);
        ptrs.push_back(buffers.back().data());
    }
    desc.back().dims = dimsOf(oc.output);
    desc.back().type = DataType::kFLOAT;
    desc.back().format = TensorFormat::kLINEAR;
    std::vector<float> output(static_cast<size_t>(oc.output[0] * oc.output[1] * oc.output[2]), NAN);
    void* outPtr = output.data();
    check(runtime->onShapeChange(desc.data(), nIn, &desc.back(), 1) == 0, op + ": onShapeChange accepts valid dims");
    int const calls = gMsdaCalls + gFgsaCalls;
    int32_t const status = runtime->enqueue(desc.data(), &desc.back(), ptrs.data(), &outPtr, nullptr, nullptr);
    bool written = true;
    for (float v : output) written = written && std::isfinite(v);
    check(status == 0 && gMsdaCalls + gFgsaCalls == calls + 1 && written, op + ": enqueue returns 0 and writes every element");
    bool const isMsda = op == fgsa::plugin::kMsdaPluginName;
    void const* seenValue = isMsda ? gLastMsda.value : gLastFgsa.value;
    void const* seenOut = isMsda ? gLastMsda.output : gLastFgsa.output;
    int32_t const seenBatch = isMsda ? gLastMsda.batch : gLastFgsa.batch;
    check(seenValue == ptrs[0] && seenOut == outPtr && seenBatch == 2, op + ": enqueue passes pointers and batch");

    desc[0].type = DataType::kHALF;
    desc.back().type = DataType::kHALF;
    check(runtime->enqueue(desc.data(), &desc.back(), ptrs.data(), &outPtr, nullptr, nullptr) == 0 &&
              (isMsda ? gLastMsda.value_type : gLastFgsa.value_type) == fgsa::DType::kFloat16 &&
              (isMsda ? gLastMsda.coord_type : gLastFgsa.coord_type) == fgsa::DType::kFloat32,
          op + ": enqueue passes FP16 values with FP32 coordinates");
    desc.back().type = DataType::kFLOAT;
    check(runtime->enqueue(desc.data(), &desc.back(), ptrs.data(), &outPtr, nullptr, nullptr) != 0,
          op + ": enqueue rejects an output type different from the value's");
    desc[0].type = DataType::kFLOAT;
    desc.back().dims.d[2] += 1;
    check(runtime->onShapeChange(desc.data(), nIn, &desc.back(), 1) != 0, op + ": onShapeChange rejects a wrong output shape");
    check(runtime->enqueue(desc.data(), &desc.back(), ptrs.data(), &outPtr, nullptr, nullptr) == cudaErrorInvalidValue,
          op + ": enqueue returns cudaErrorInvalidValue for a wrong output shape");
}

// FGSA_Attention through the plugin: every link outside [0, K) gives an all-zero output.
void testInvalidLinksThroughPlugin() {
    IPluginCreatorV3One* creator = findCreator(fgsa::plugin::kFgsaAttentionPluginName);
    std::unique_ptr<IPluginV3> plugin = createDefault(creator);
    auto* runtime = static_cast<IPluginV3OneRuntime*>(plugin->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
    OpCase oc = fgsaCase();
    std::vector<PluginTensorDesc> desc(6);
    std::vector<std::vector<float>> floats;
    std::vector<int32_t> links(2 * 70 * 8, 70);
    std::vector<void const*> ptrs;
    for (size_t i = 0; i < 5; ++i) {
        desc[i].dims = dimsOf(oc.inputs[i]);
        desc[i].type = oc.roleTypes[i];
        desc[i].format = TensorFormat::kLINEAR;
        int64_t n = 1;
        for (int64_t d : oc.inputs[i]) n *= d;
        floats.emplace_back(static_cast<size_t>(n), 1.0f);
        ptrs.push_back(i == 2 ? static_cast<void const*>(links.data()) : floats.back().data());
    }
    desc[5].dims = dimsOf(oc.output);
    desc[5].type = DataType::kFLOAT;
    std::vector<float> output(2 * 70 * 2048, NAN);
    void* outPtr = output.data();
    bool zeros = runtime->enqueue(desc.data(), &desc[5], ptrs.data(), &outPtr, nullptr, nullptr) == 0;
    for (float v : output) zeros = zeros && v == 0.0f;
    check(zeros, "FGSA_Attention: links all == K -> output all zero");
}

}  // namespace

int main() {
    int32_t n = -1;
    getCreators(n);
    check(n == 2, "getCreators: both creators (nothing is registered at load time)");
    testOp(msdaCase());
    testOp(fgsaCase());
    testInvalidLinksThroughPlugin();
    std::printf("%d failure(s)\n", gFailures);
    return gFailures;
}
