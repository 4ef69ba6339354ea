// The only interface between host code and the kernels: plain structs of pointers, sizes and strides.
//
// One launcher serves every adapter (TensorRT plugin, torch extension, CPU reference, ONNX Runtime ops)
// because each adapter only fills one of these structs. The structs are trivially copyable (no virtual
// functions, no constructors) so they travel to the GPU as kernel arguments.
// This header needs no CUDA: the CPU reference includes it through g++.
#pragma once

#include <cstdint>

namespace fgsa {

// FMMP uses 3 levels; 8 leaves room for other pyramids without dynamic allocation.
constexpr int kMaxLevels = 8;

// Element types of the tensors. kFloat64 exists for the CPU reference only (exact indexing checks).
enum class DType : int32_t { kFloat32 = 0, kFloat16 = 1, kFloat64 = 2 };

// Static feature-pyramid geometry: level l is a H x W map whose row-major positions start at `start[l]`
// inside the flattened value tensor (levels concatenated in order).
struct LevelShapes {
    int32_t num_levels;
    int32_t height[kMaxLevels];
    int32_t width[kMaxLevels];
    int64_t start[kMaxLevels];
    int64_t total;  // sum of H*W = Len_in
};

// What both ops share: the value map [B, Len_in, heads, Dh] and the output [B, queries, heads * Dh], their
// element types, the level geometry and the points per level. Each op's struct adds its own inputs and
// the sizes that name its items (queries and heads); fgsa/op_traits.h says how each op walks its items.
struct OpParams {
    const void* value;
    void* output;
    DType value_type;
    DType coord_type;
    int32_t batch;
    int32_t head_dim;
    int32_t num_points;
    LevelShapes levels;
    // Strides in elements. Channels are contiguous (stride 1) and a head's Dh channels follow each other.
    int64_t value_stride_batch;
    int64_t value_stride_pos;
    int64_t value_stride_head;
    int64_t out_stride_batch;
    int64_t out_stride_query;
};

// Multi-scale deformable attention, Deformable-DETR signature (see fgsa/ops/reference.py::msda).
//   value              [B, Len_in, M, Dh]     value_type
//   sampling_locations [B, Q, M, L, P, 2]     coord_type, (x, y) in [0, 1]
//   attention_weights  [B, Q, M, L, P]        coord_type, already normalised
//   output             [B, Q, M * Dh]         value_type, channel h * Dh + c
struct MsdaParams : OpParams {
    const void* sampling_locations;
    const void* attention_weights;
    int32_t num_queries;
    int32_t num_heads;
};

// All side heads of one FGSA module (see fgsa/ops/reference.py::fgsa_attention).
//   value       [B, Len_in, Hs*M, Dh]      value_type
//   ref_points  [B, K, 2]                  coord_type, (x, y) in [0, 1]
//   links       [B, K, Hs]                 int32; side head h of keypoint k samples around keypoint links[b,k,h];
//                                          a link outside [0, K) makes that side head's output zero
//   offsets     [B, K, Hs*M, L, P, 2]      coord_type, level pixels (x, y)
//   logits      [B, K, Hs*M, L*P]          coord_type, softmax over L*P per head
//   output      [B, K, Hs*M*Dh]            value_type, channel (h*M + m) * Dh + c
struct FgsaParams : OpParams {
    const void* ref_points;
    const int32_t* links;
    const void* offsets;
    const void* logits;
    int32_t num_keypoints;
    int32_t num_side_heads;
    int32_t heads_per_side;  // M
};

// Thread layouts of the kernels (fgsa/team.h):
//   kTeam  every lane of an item's team computes its own locations and weights (and, for FGSA_Attention,
//          the softmax over all L*P logits); groups = as many as a warp allows; 64-bit indices.
//   kItem  each sample's location and weight is computed once per item by one lane and shared through
//          warp shuffles (the softmax once per item); groups chosen from the item count; pixel
//          coordinates without divisions; 32-bit indices where the sizes allow; L and P compile-time
//          constants for the FMMP pyramid (3 levels x 4 points).
// kAuto is kTeam until kernels/tools/gpu_check measures kItem faster (kernels/README.md).
enum class Layout : int32_t { kAuto = 0, kTeam = 1, kItem = 2 };

// How the work of one (batch, query, head) item is split among threads; see fgsa/team.h.
struct LaunchConfig {
    int32_t vec = 0;     // channels per thread (1 or the 16-byte vector width); 0 = widest that alignment allows
    int32_t groups = 0;  // sampling-point groups per item (power of two); 0 = automatic
    Layout layout = Layout::kAuto;
    int32_t index_bits = 0;  // kItem: 0 = 32 where the sizes allow, else 64; 32 or 64 force one (32 only if it fits)
};

}  // namespace fgsa
