// libfgsa_ort_ops.so: the plugin ops as ONNX Runtime custom ops, on the CPU execution provider.
//
// Registers FGSA_MSDA and FGSA_Attention (kernels/plugin/fgsa_plugins.json) and TensorRT's
// MultiscaleDeformableAttnPlugin_TRT in the plugin domain, so the plugin-form and trt-builtin graphs that
// TensorRT builds run unchanged in ONNX Runtime. Written against the C API only (ORT_API_VERSION 21) and
// not linked to libonnxruntime: ONNX Runtime hands its API table to RegisterCustomOps.
//
// Every callback returns an OrtStatus instead of throwing: inputs are checked (presence, tensor-ness,
// element types, ranks, shapes through fgsa/shapes.h, level geometry) before any memory is read, and the
// message names the op and the input. The math is fgsa/sampling.h (compute.h), spread over ONNX Runtime's
// intra-op thread pool in blocks of items.
#include <onnxruntime_c_api.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "compute.h"
#include "fgsa/op_traits.h"
#include "fgsa/params.h"
#include "fgsa/shapes.h"
#include "plugin_names.h"

#if ORT_API_VERSION < 21
#error "libfgsa_ort_ops needs ONNX Runtime C API headers of version 21 (onnxruntime 1.21) or newer"
#endif

#define FGSA_ORT_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

// The API table of the ONNX Runtime that loaded us (set by RegisterCustomOps before any op runs).
const OrtApi* g_api = nullptr;

constexpr int kMaxRank = 8;
// Names from the plugin's own header; the domain and input tables are the spec's
// (kernels/plugin/fgsa_plugins.json; tests/kernels/test_ort_lib_errors.py keeps them equal).
constexpr const char* kMsdaName = fgsa::plugin::kMsdaPluginName;
constexpr const char* kFgsaName = fgsa::plugin::kFgsaAttentionPluginName;
constexpr const char* kTrtMsdaName = "MultiscaleDeformableAttnPlugin_TRT";
constexpr const char* kDomain = "trt.plugins";

struct InputDef {
    const char* name;
    int rank;
};
constexpr InputDef kMsdaInputs[] = {{"value", 4}, {"sampling_locations", 6}, {"attention_weights", 5}};
constexpr InputDef kFgsaInputs[] = {{"value", 4}, {"ref_points", 3}, {"links", 3}, {"offsets", 6}, {"logits", 4}};
constexpr InputDef kTrtMsdaInputs[] = {{"value", 4}, {"spatial_shapes", 2}, {"level_start_index", 1},
                                       {"sampling_locations", 6}, {"attention_weights", 5}};

OrtStatus* error(const char* fmt, ...) {
    char text[512];
    va_list args;
    va_start(args, fmt);
    std::vsnprintf(text, sizeof(text), fmt, args);
    va_end(args);
    return g_api->CreateStatus(ORT_INVALID_ARGUMENT, text);
}

#define FGSA_ORT_TRY(expr)                        \
    do {                                          \
        if (OrtStatus* _status = (expr)) return _status; \
    } while (0)

const char* type_name(ONNXTensorElementDataType t) {
    switch (t) {
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: return "float32";
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: return "float16";
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE: return "float64";
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16: return "bfloat16";
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: return "int32";
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: return "int64";
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8: return "int8";
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8: return "uint8";
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL: return "bool";
        default: return "another element type";
    }
}

// One input tensor as the kernels need it.
struct Input {
    const char* name = nullptr;
    ONNXTensorElementDataType type = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
    int rank = 0;
    int64_t dims[kMaxRank] = {};
    int64_t elements = 0;
    const void* data = nullptr;
};

OrtStatus* read_shape(const OrtTensorTypeAndShapeInfo* info, Input* in) {
    size_t rank = 0;
    FGSA_ORT_TRY(g_api->GetTensorElementType(info, &in->type));
    FGSA_ORT_TRY(g_api->GetDimensionsCount(info, &rank));
    if (rank > static_cast<size_t>(kMaxRank)) return error("input '%s': rank %zu is not supported", in->name, rank);
    in->rank = static_cast<int>(rank);
    return g_api->GetDimensions(info, in->dims, rank);
}

// Reads input `index` and checks that it is a tensor of rank `rank`.
OrtStatus* get_input(OrtKernelContext* ctx, const char* op, const InputDef* table, size_t index, Input* in) {
    const char* name = table[index].name;
    const int rank = table[index].rank;
    in->name = name;
    const OrtValue* value = nullptr;
    FGSA_ORT_TRY(g_api->KernelContext_GetInput(ctx, index, &value));
    if (!value) return error("%s input '%s' (#%zu) is missing", op, name, index);
    int is_tensor = 0;
    FGSA_ORT_TRY(g_api->IsTensor(value, &is_tensor));
    if (!is_tensor) return error("%s input '%s' (#%zu): expected a tensor", op, name, index);
    OrtTensorTypeAndShapeInfo* info = nullptr;
    FGSA_ORT_TRY(g_api->GetTensorTypeAndShape(value, &info));
    OrtStatus* status = read_shape(info, in);
    size_t count = 0;
    if (!status) status = g_api->GetTensorShapeElementCount(info, &count);
    g_api->ReleaseTensorTypeAndShapeInfo(info);
    if (status) return status;
    if (in->rank != rank) {
        return error("%s input '%s': expected a rank-%d tensor, got shape %s", op, name, rank,
                     fgsa::ShapeText(in->dims, in->rank).text);
    }
    in->elements = static_cast<int64_t>(count);
    void* data = nullptr;
    // The C API has no const accessor in version 21; the data is only read.
    FGSA_ORT_TRY(g_api->GetTensorMutableData(const_cast<OrtValue*>(value), &data));
    in->data = data;
    return nullptr;
}

// Reads inputs 0 .. N-1 of `table` into `ins`, in order; the counts must match (both give N).
template <size_t N>
OrtStatus* get_inputs(OrtKernelContext* ctx, const char* op, const InputDef (&table)[N], Input* const (&ins)[N]) {
    for (size_t i = 0; i < N; ++i) FGSA_ORT_TRY(get_input(ctx, op, table, i, ins[i]));
    return nullptr;
}

bool is_float(ONNXTensorElementDataType t) {
    return t == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT || t == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16;
}
fgsa::DType dtype_of(ONNXTensorElementDataType t) {
    return t == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16 ? fgsa::DType::kFloat16 : fgsa::DType::kFloat32;
}

// The plugin's type rule: value float32/float16; every coordinate input one shared float type.
OrtStatus* check_float_types(const char* op, const Input& value, const Input* const* coords, int n) {
    if (!is_float(value.type)) {
        return error("%s input '%s': expected float32 or float16, got %s", op, value.name, type_name(value.type));
    }
    for (int i = 0; i < n; ++i) {
        const Input& c = *coords[i];
        if (!is_float(c.type)) {
            return error("%s input '%s': expected float32 or float16, got %s", op, c.name, type_name(c.type));
        }
        if (c.type != coords[0]->type) {
            return error("%s input '%s': expected %s like '%s' (coordinate inputs share one type), got %s", op, c.name,
                         type_name(coords[0]->type), coords[0]->name, type_name(c.type));
        }
    }
    return nullptr;
}

OrtStatus* shape_error(const char* op, const fgsa::Status& s) {
    return s.ok ? nullptr : error("%s input %s", op, s.message);
}

OrtStatus* get_output(OrtKernelContext* ctx, const int64_t* dims, int rank, void** data) {
    OrtValue* out = nullptr;
    FGSA_ORT_TRY(g_api->KernelContext_GetOutput(ctx, 0, dims, static_cast<size_t>(rank), &out));
    return g_api->GetTensorMutableData(out, data);
}

// Items (in compute.h's head-major order) are computed in blocks spread over the session's intra-op
// threads: a block is the queries of one head (FMMP: 70 items, ~0.1 ms), or 64 items when there are more
// queries; enough blocks to balance the threads (64 heads per batch for FMMP's FGSA_Attention).
int64_t block_items(int64_t queries) { return std::max<int64_t>(1, std::min<int64_t>(queries, 64)); }

template <typename Params>
struct Job {
    const Params* params;
    void (*fn)(const Params&, int64_t, int64_t);
    int64_t items;
    int64_t block;
    static void run_block(void* data, size_t index) {
        const Job* job = static_cast<const Job*>(data);
        const int64_t begin = static_cast<int64_t>(index) * job->block;
        job->fn(*job->params, begin, std::min(job->items, begin + job->block));
    }
};

template <typename Params>
OrtStatus* run_parallel(OrtKernelContext* ctx, const Params& p, void (*fn)(const Params&, int64_t, int64_t),
                        int64_t items) {
    if (items <= 0) return nullptr;
    Job<Params> job{&p, fn, items, block_items(fgsa::OpTraits<Params>::queries(p))};
    const int64_t blocks = (items + job.block - 1) / job.block;
    if (blocks == 1) {
        fn(p, 0, items);
        return nullptr;
    }
    return g_api->KernelContext_ParallelFor(ctx, Job<Params>::run_block, static_cast<size_t>(blocks), 0, &job);
}

// What every op's compute does once its inputs are checked and `p` has its sizes, inputs and types: the
// output tensor, then (unless the op is empty) the params check and the items over the thread pool.
template <typename Params>
OrtStatus* finish(OrtKernelContext* ctx, const char* op, Params& p, const int64_t* out_dims, int rank) {
    FGSA_ORT_TRY(get_output(ctx, out_dims, rank, &p.output));
    const int64_t items = fgsa::OpTraits<Params>::items(p);
    if (items == 0) return nullptr;
    FGSA_ORT_TRY(shape_error(op, fgsa::check_params(p)));
    return run_parallel(ctx, p, fgsa::ort::range_function(p), items);
}

// ---- kernels -------------------------------------------------------------------------------------

// FGSA_MSDA and FGSA_Attention: spatial_shapes is an attribute, read once per node.
OrtStatus* read_levels(const OrtKernelInfo* info, const char* op, fgsa::LevelShapes* levels) {
    int64_t hw[2 * fgsa::kMaxLevels + 1];
    size_t size = 2 * fgsa::kMaxLevels + 1;
    OrtStatus* status = g_api->KernelInfoGetAttributeArray_int64(info, fgsa::plugin::kSpatialShapesField, hw, &size);
    if (status) {
        const std::string why = g_api->GetErrorMessage(status);
        g_api->ReleaseStatus(status);
        return error("%s attribute 'spatial_shapes': expected ints [H0, W0, H1, W1, ...] with 1..%d levels (%s)", op,
                     fgsa::kMaxLevels, why.c_str());
    }
    if (size % 2 != 0) return error("%s attribute 'spatial_shapes': expected an even number of ints, got %zu", op, size);
    return shape_error(op, fgsa::make_levels(hw, static_cast<int32_t>(size / 2), levels));
}

OrtStatus* compute_msda(const fgsa::LevelShapes& levels, OrtKernelContext* ctx) {
    Input value, loc, weights;
    FGSA_ORT_TRY(get_inputs(ctx, kMsdaName, kMsdaInputs, {&value, &loc, &weights}));
    const Input* coords[] = {&loc, &weights};
    FGSA_ORT_TRY(check_float_types(kMsdaName, value, coords, 2));
    fgsa::MsdaParams p{};
    FGSA_ORT_TRY(shape_error(kMsdaName, fgsa::describe_msda(value.dims, loc.dims, weights.dims, levels, &p)));
    const int64_t out_dims[3] = {value.dims[0], loc.dims[1], value.dims[2] * value.dims[3]};
    p.value = value.data, p.sampling_locations = loc.data, p.attention_weights = weights.data;
    p.value_type = dtype_of(value.type), p.coord_type = dtype_of(loc.type);
    return finish(ctx, kMsdaName, p, out_dims, 3);
}

OrtStatus* compute_fgsa(const fgsa::LevelShapes& levels, OrtKernelContext* ctx) {
    Input value, ref, links, offsets, logits;
    FGSA_ORT_TRY(get_inputs(ctx, kFgsaName, kFgsaInputs, {&value, &ref, &links, &offsets, &logits}));
    const Input* coords[] = {&ref, &offsets, &logits};
    FGSA_ORT_TRY(check_float_types(kFgsaName, value, coords, 3));
    if (links.type != ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32) {
        return error("%s input 'links': expected int32, got %s (cast the link table to int32)", kFgsaName,
                     type_name(links.type));
    }
    fgsa::FgsaParams p{};
    FGSA_ORT_TRY(shape_error(kFgsaName, fgsa::describe_fgsa(value.dims, ref.dims, links.dims, offsets.dims,
                                                            logits.dims, levels, &p)));
    const int64_t out_dims[3] = {value.dims[0], ref.dims[1], value.dims[2] * value.dims[3]};
    // Links outside [0, K) are part of the op (zero channels, kernels/README.md): sampling.h never reads
    // through them, so they need no check here.
    p.value = value.data, p.ref_points = ref.data, p.links = static_cast<const int32_t*>(links.data);
    p.offsets = offsets.data, p.logits = logits.data;
    p.value_type = dtype_of(value.type), p.coord_type = dtype_of(ref.type);
    return finish(ctx, kFgsaName, p, out_dims, 3);
}

// TensorRT's MultiscaleDeformableAttnPlugin_TRT (plugin_version 2): value [B, Len_in, M, Dh],
// spatial_shapes [L, 2] and level_start_index [L] as int32 (or int64) tensors, sampling_locations
// [B, Q, M, L, P, 2], attention_weights [B, Q, M, L, P]; output [B, Q, M, Dh].
int64_t index_at(const Input& in, int64_t i) {
    return in.type == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64 ? static_cast<const int64_t*>(in.data)[i]
                                                         : static_cast<const int32_t*>(in.data)[i];
}

OrtStatus* compute_trt_msda(const fgsa::LevelShapes&, OrtKernelContext* ctx) {
    const char* op = kTrtMsdaName;
    Input value, shapes, starts, loc, weights;
    FGSA_ORT_TRY(get_inputs(ctx, op, kTrtMsdaInputs, {&value, &shapes, &starts, &loc, &weights}));
    for (const Input* in : {&shapes, &starts}) {
        if (in->type != ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32 && in->type != ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64) {
            return error("%s input '%s': expected int32 (or int64), got %s", op, in->name, type_name(in->type));
        }
    }
    const Input* coords[] = {&loc, &weights};
    FGSA_ORT_TRY(check_float_types(op, value, coords, 2));
    const int64_t L = shapes.dims[0];
    if (shapes.dims[1] != 2 || L < 1 || L > fgsa::kMaxLevels) {
        return error("%s input 'spatial_shapes': expected shape [L, 2] with 1 <= L <= %d, got %s", op,
                     fgsa::kMaxLevels, fgsa::ShapeText(shapes.dims, 2).text);
    }
    if (starts.dims[0] != L) {
        return error("%s input 'level_start_index': expected shape [L] = [%lld] like spatial_shapes, got %s", op,
                     static_cast<long long>(L), fgsa::ShapeText(starts.dims, 1).text);
    }
    int64_t hw[2 * fgsa::kMaxLevels];
    for (int64_t i = 0; i < 2 * L; ++i) hw[i] = index_at(shapes, i);
    fgsa::LevelShapes levels{};
    FGSA_ORT_TRY(shape_error(op, fgsa::make_levels(hw, static_cast<int32_t>(L), &levels)));
    for (int64_t l = 0; l < L; ++l) {
        if (index_at(starts, l) != levels.start[l]) {
            return error("%s input 'level_start_index': expected the running sums of H*W over spatial_shapes "
                         "(level %lld starts at %lld), got %lld",
                         op, static_cast<long long>(l), static_cast<long long>(levels.start[l]),
                         static_cast<long long>(index_at(starts, l)));
        }
    }
    fgsa::MsdaParams p{};
    FGSA_ORT_TRY(shape_error(op, fgsa::describe_msda(value.dims, loc.dims, weights.dims, levels, &p)));
    const int64_t out_dims[4] = {value.dims[0], loc.dims[1], value.dims[2], value.dims[3]};
    p.value = value.data, p.sampling_locations = loc.data, p.attention_weights = weights.data;
    p.value_type = dtype_of(value.type), p.coord_type = dtype_of(loc.type);
    return finish(ctx, op, p, out_dims, 4);
}

// ---- type and shape inference -----------------------------------------------------------------------
// The output has the value's element type (inputs are declared "any type", so ONNX Runtime learns it
// here) and the shape [B, Q, M*Dh] (FGSA ops) or [B, Q, M, Dh] (TensorRT's op), with B from value and Q
// from input `query_input`. Unknown or symbolic dims carry over.

OrtStatus* output_info(const OrtTensorTypeAndShapeInfo* value, const OrtTensorTypeAndShapeInfo* query,
                       bool split_heads, OrtTensorTypeAndShapeInfo* out) {
    ONNXTensorElementDataType type;
    FGSA_ORT_TRY(g_api->GetTensorElementType(value, &type));
    FGSA_ORT_TRY(g_api->SetTensorElementType(out, type));
    size_t vr = 0, qr = 0;
    FGSA_ORT_TRY(g_api->GetDimensionsCount(value, &vr));
    FGSA_ORT_TRY(g_api->GetDimensionsCount(query, &qr));
    if (vr != 4 || qr < 2 || qr > static_cast<size_t>(kMaxRank)) return nullptr;  // Compute reports bad ranks
    int64_t vd[4], qd[kMaxRank];
    const char* vs[4] = {};
    const char* qs[kMaxRank] = {};
    FGSA_ORT_TRY(g_api->GetDimensions(value, vd, 4));
    FGSA_ORT_TRY(g_api->GetSymbolicDimensions(value, vs, 4));
    FGSA_ORT_TRY(g_api->GetDimensions(query, qd, qr));
    FGSA_ORT_TRY(g_api->GetSymbolicDimensions(query, qs, qr));
    const char* empty = "";
    const int64_t channels = vd[2] >= 0 && vd[3] >= 0 ? vd[2] * vd[3] : -1;
    int64_t dims[4] = {vd[0], qd[1], split_heads ? vd[2] : channels, vd[3]};
    const char* symbols[4] = {vs[0] ? vs[0] : empty, qs[1] ? qs[1] : empty, split_heads && vs[2] ? vs[2] : empty,
                              vs[3] ? vs[3] : empty};
    const size_t rank = split_heads ? 4 : 3;
    FGSA_ORT_TRY(g_api->SetDimensions(out, dims, rank));
    return g_api->SetSymbolicDimensions(out, symbols, rank);
}

OrtStatus* infer(OrtShapeInferContext* ctx, size_t query_input, bool split_heads) {
    OrtTensorTypeAndShapeInfo *value = nullptr, *query = nullptr, *out = nullptr;
    OrtStatus* status = g_api->ShapeInferContext_GetInputTypeShape(ctx, 0, &value);
    if (!status) status = g_api->ShapeInferContext_GetInputTypeShape(ctx, query_input, &query);
    if (!status) status = g_api->CreateTensorTypeAndShapeInfo(&out);
    if (!status) status = output_info(value, query, split_heads, out);
    if (!status) status = g_api->ShapeInferContext_SetOutputTypeShape(ctx, 0, out);
    // The context owns the input infos (ONNX Runtime's own C++ wrapper releases them unowned); only
    // the output info is ours.
    if (out) g_api->ReleaseTensorTypeAndShapeInfo(out);
    return status;
}

// ---- op tables -------------------------------------------------------------------------------------

// One custom op: name, number of inputs, where spatial_shapes comes from, compute, and which input gives
// the output's second dim.
using ComputeFn = OrtStatus* (*)(const fgsa::LevelShapes&, OrtKernelContext*);

struct OpDef : OrtCustomOp {
    const char* name;
    ComputeFn run;
    size_t inputs;
    size_t query_input;
    bool split_heads;
    bool attribute_levels;
};

struct Kernel {
    const OpDef* op;
    fgsa::LevelShapes levels{};
};

template <typename F>
OrtStatus* guarded(F&& f) {
    // Nothing may throw across the C API: allocation failures and the like become a status.
    try {
        return f();
    } catch (const std::bad_alloc&) {
        return g_api->CreateStatus(ORT_FAIL, "libfgsa_ort_ops: out of memory");
    } catch (const std::exception& e) {
        return g_api->CreateStatus(ORT_FAIL, e.what());
    } catch (...) {
        return g_api->CreateStatus(ORT_FAIL, "libfgsa_ort_ops: unknown exception");
    }
}

OrtStatus* ORT_API_CALL create_kernel(const OrtCustomOp* op_, const OrtApi*, const OrtKernelInfo* info, void** out) {
    return guarded([&]() -> OrtStatus* {
        const OpDef* op = static_cast<const OpDef*>(op_);
        Kernel k{op};
        if (op->attribute_levels) FGSA_ORT_TRY(read_levels(info, op->name, &k.levels));
        *out = new Kernel(k);
        return nullptr;
    });
}

OrtStatus* ORT_API_CALL compute(void* kernel, OrtKernelContext* ctx) {
    return guarded([&]() -> OrtStatus* {
        const Kernel& k = *static_cast<const Kernel*>(kernel);
        return k.op->run(k.levels, ctx);
    });
}

void ORT_API_CALL destroy_kernel(void* kernel) { delete static_cast<Kernel*>(kernel); }

OpDef make_op(const char* name, ComputeFn run, size_t inputs, size_t query_input, bool split_heads, bool attribute_levels) {
    OpDef op{};
    op.version = ORT_API_VERSION;
    op.name = name, op.run = run, op.inputs = inputs, op.query_input = query_input, op.split_heads = split_heads;
    op.attribute_levels = attribute_levels;
    op.GetName = [](const OrtCustomOp* o) { return static_cast<const OpDef*>(o)->name; };
    op.GetExecutionProviderType = [](const OrtCustomOp*) -> const char* { return "CPUExecutionProvider"; };
    // "Any type": ONNX Runtime checks nothing, Compute checks the plugin's type rules with named errors.
    op.GetInputType = [](const OrtCustomOp*, size_t) { return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED; };
    op.GetInputTypeCount = [](const OrtCustomOp* o) { return static_cast<const OpDef*>(o)->inputs; };
    op.GetOutputType = [](const OrtCustomOp*, size_t) { return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED; };
    op.GetOutputTypeCount = [](const OrtCustomOp*) -> size_t { return 1; };
    op.GetInputCharacteristic = [](const OrtCustomOp*, size_t) { return INPUT_OUTPUT_REQUIRED; };
    op.GetOutputCharacteristic = [](const OrtCustomOp*, size_t) { return INPUT_OUTPUT_REQUIRED; };
    op.GetInputMemoryType = [](const OrtCustomOp*, size_t) { return OrtMemTypeDefault; };
    op.GetVariadicInputMinArity = [](const OrtCustomOp*) { return 1; };
    op.GetVariadicInputHomogeneity = [](const OrtCustomOp*) { return 1; };
    op.GetVariadicOutputMinArity = [](const OrtCustomOp*) { return 1; };
    op.GetVariadicOutputHomogeneity = [](const OrtCustomOp*) { return 1; };
    op.CreateKernelV2 = create_kernel;
    op.KernelComputeV2 = compute;
    op.KernelDestroy = destroy_kernel;
    op.InferOutputShapeFn = [](const OrtCustomOp* o, OrtShapeInferContext* ctx) -> OrtStatusPtr {
        const OpDef* d = static_cast<const OpDef*>(o);
        return guarded([&] { return infer(ctx, d->query_input, d->split_heads); });
    };
    op.GetStartVersion = [](const OrtCustomOp*) { return 1; };
    op.GetEndVersion = [](const OrtCustomOp*) { return 1 << 30; };
    return op;
}

const OpDef kOps[] = {
    make_op(kMsdaName, compute_msda, 3, 1, false, true),
    make_op(kFgsaName, compute_fgsa, 5, 1, false, true),
    make_op(kTrtMsdaName, compute_trt_msda, 5, 3, true, false),
};

// Every registration gets its own domain object, which must outlive the sessions using it; sessions do
// not tell a custom-op library when they end, so the (small) domains live until the process exits.
std::mutex g_domains_mutex;
std::vector<OrtCustomOpDomain*>* g_domains = new std::vector<OrtCustomOpDomain*>();

}  // namespace

FGSA_ORT_EXPORT OrtStatus* ORT_API_CALL RegisterCustomOps(OrtSessionOptions* options, const OrtApiBase* api_base) {
    const OrtApi* api = api_base->GetApi(ORT_API_VERSION);
    if (!api) {
        // An older ONNX Runtime: its version-1 table can still say why.
        const OrtApi* old = api_base->GetApi(1);
        char text[256];
        std::snprintf(text, sizeof(text),
                      "libfgsa_ort_ops needs onnxruntime >= 1.%d (C API %d); this process runs onnxruntime %s",
                      ORT_API_VERSION, ORT_API_VERSION, api_base->GetVersionString());
        return old ? old->CreateStatus(ORT_FAIL, text) : nullptr;
    }
    g_api = api;
    return guarded([&]() -> OrtStatus* {
        OrtCustomOpDomain* domain = nullptr;
        FGSA_ORT_TRY(api->CreateCustomOpDomain(kDomain, &domain));
        {
            std::lock_guard<std::mutex> lock(g_domains_mutex);
            g_domains->push_back(domain);
        }
        for (const OpDef& op : kOps) FGSA_ORT_TRY(api->CustomOpDomain_Add(domain, &op));
        return api->AddCustomOpDomain(options, domain);
    });
}
