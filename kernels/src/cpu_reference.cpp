// CPU reference of both ops, compiled by the host compiler from the same sampling math and thread
// decomposition as the CUDA kernels (fgsa/sampling.h, fgsa/team.h), behind a C ABI for ctypes.
//
// It walks the GPU's threads one by one: for each item, every lane of its team computes its partial sum
// exactly as the kernel would, and the lanes that share channels are added before the store. So CI checks
// the kernels' indexing, border handling, link gather and point split without a GPU.
#include <cstdint>
#include <cstring>
#include <vector>

#include "fgsa/params.h"
#include "fgsa/sampling.h"
#include "fgsa/shapes.h"
#include "fgsa/team.h"

#define FGSA_CPU_API extern "C" __attribute__((visibility("default")))

namespace {

using fgsa::DType;
using fgsa::Status;
using fgsa::TeamPlan;

constexpr int32_t kOk = 0;
constexpr int32_t kInvalidArgument = 1;

int32_t report(const Status& s, char* err, int32_t err_len) {
    if (err && err_len > 0) {
        std::strncpy(err, s.message, static_cast<size_t>(err_len) - 1);
        err[err_len - 1] = '\0';
    }
    return s.ok ? kOk : kInvalidArgument;
}

// Runs every lane of every team of the launch `plan` describes. Partial(params, item, group, groups, c0, acc)
// is msda_partial or fgsa_partial; OutOffset gives where an item's channel c0 goes.
template <int VEC, typename T, typename Params, typename Partial, typename OutOffset>
void run_teams(const Params& p, const TeamPlan& plan, int64_t items, Partial partial, OutOffset out_offset) {
    using A = T;  // accumulate in the element type: float for FP32, double for the exact FP64 check
    std::vector<A> sums(static_cast<size_t>(plan.tph) * VEC);
    T* out = static_cast<T*>(p.output);
    for (int64_t item = 0; item < items; ++item) {
        std::fill(sums.begin(), sums.end(), A(0));
        for (int32_t lane = 0; lane < plan.team; ++lane) {
            const fgsa::ThreadWork w = fgsa::decompose_thread(item * plan.team + lane, plan);
            A acc[VEC] = {};
            partial(p, w.item, w.group, plan.groups, w.c0, acc);
            for (int c = 0; c < VEC; ++c) sums[static_cast<size_t>(w.c0) + c] += acc[c];
        }
        for (int32_t c0 = 0; c0 < p.head_dim; c0 += VEC) {
            A total[VEC];
            for (int c = 0; c < VEC; ++c) total[c] = sums[static_cast<size_t>(c0) + c];
            fgsa::store_vec<VEC>(out + out_offset(p, item, c0), total);
        }
    }
}

template <typename T, int VEC>
void msda_typed(const fgsa::MsdaParams& p, const TeamPlan& plan) {
    run_teams<VEC, T>(p, plan, fgsa::msda_items(p), fgsa::msda_partial<VEC, T, T, T>, fgsa::msda_out_offset);
}

template <typename T, int VEC>
void fgsa_typed(const fgsa::FgsaParams& p, const TeamPlan& plan) {
    run_teams<VEC, T>(p, plan, fgsa::fgsa_items(p), fgsa::fgsa_partial<VEC, T, T, T>, fgsa::fgsa_out_offset);
}

// The CPU reference runs one element type for values and coordinates: float32 or float64.
Status resolve(int32_t dtype, int32_t head_dim, int32_t samples, int32_t vec, int32_t groups, DType* type,
               TeamPlan* plan) {
    if (dtype != static_cast<int32_t>(DType::kFloat32) && dtype != static_cast<int32_t>(DType::kFloat64)) {
        return fgsa::fail("dtype: expected 0 (float32) or 2 (float64), got %d", dtype);
    }
    *type = static_cast<DType>(dtype);
    if (vec != 1 && vec != 2 && vec != 4 && vec != 8) return fgsa::fail("vec: expected 1, 2, 4 or 8, got %d", vec);
    if (!fgsa::plan_team(head_dim, samples, vec, groups, plan)) {
        return fgsa::fail("vec/groups: no thread layout with vec=%d groups=%d for head_dim=%d and %d samples", vec,
                          groups, head_dim, samples);
    }
    return Status{};
}

template <typename Params, typename Fn32, typename Fn64>
void by_dtype(DType type, const Params& p, const TeamPlan& plan, Fn32 f32, Fn64 f64) {
    if (type == DType::kFloat32) {
        f32(p, plan);
    } else {
        f64(p, plan);
    }
}

}  // namespace

// value [B, Len_in, M, Dh], sampling_locations [B, Q, M, L, P, 2], attention_weights [B, Q, M, L, P],
// output [B, Q, M*Dh], all contiguous, all of `dtype` (0 float32, 2 float64). spatial_shapes holds
// num_levels (H, W) pairs. vec/groups choose the GPU thread layout to emulate (groups 0 = automatic).
// Returns 0, or 1 with a message in err.
FGSA_CPU_API int32_t fgsa_cpu_msda(const void* value, const void* sampling_locations, const void* attention_weights,
                                   void* output, int32_t dtype, const int64_t* value_shape,
                                   const int64_t* locations_shape, const int64_t* weights_shape,
                                   const int64_t* spatial_shapes, int32_t num_levels, int32_t vec, int32_t groups,
                                   char* err, int32_t err_len) {
    fgsa::LevelShapes levels;
    Status s = fgsa::make_levels(spatial_shapes, num_levels, &levels);
    if (!s.ok) return report(s, err, err_len);
    fgsa::MsdaParams p{};
    if (!(s = fgsa::describe_msda(value_shape, locations_shape, weights_shape, levels, &p)).ok) return report(s, err, err_len);
    p.value = value, p.sampling_locations = sampling_locations, p.attention_weights = attention_weights, p.output = output;
    DType type;
    TeamPlan plan;
    if (!(s = resolve(dtype, p.head_dim, num_levels * p.num_points, vec, groups, &type, &plan)).ok) return report(s, err, err_len);
    p.value_type = p.coord_type = type;
    if (!(s = fgsa::check_params(p)).ok) return report(s, err, err_len);
    switch (plan.vec) {
        case 1: by_dtype(type, p, plan, msda_typed<float, 1>, msda_typed<double, 1>); break;
        case 2: by_dtype(type, p, plan, msda_typed<float, 2>, msda_typed<double, 2>); break;
        case 4: by_dtype(type, p, plan, msda_typed<float, 4>, msda_typed<double, 4>); break;
        default: by_dtype(type, p, plan, msda_typed<float, 8>, msda_typed<double, 8>); break;
    }
    return report(s, err, err_len);
}

// value [B, Len_in, Hs*M, Dh], ref_points [B, K, 2], links [B, K, Hs] int32, offsets [B, K, Hs*M, L, P, 2],
// logits [B, K, Hs*M, L*P], output [B, K, Hs*M*Dh]; float tensors of `dtype`, all contiguous.
FGSA_CPU_API int32_t fgsa_cpu_attention(const void* value, const void* ref_points, const int32_t* links,
                                        const void* offsets, const void* logits, void* output, int32_t dtype,
                                        const int64_t* value_shape, const int64_t* ref_shape,
                                        const int64_t* links_shape, const int64_t* offsets_shape,
                                        const int64_t* logits_shape, const int64_t* spatial_shapes,
                                        int32_t num_levels, int32_t vec, int32_t groups, char* err, int32_t err_len) {
    fgsa::LevelShapes levels;
    Status s = fgsa::make_levels(spatial_shapes, num_levels, &levels);
    if (!s.ok) return report(s, err, err_len);
    fgsa::FgsaParams p{};
    s = fgsa::describe_fgsa(value_shape, ref_shape, links_shape, offsets_shape, logits_shape, levels, &p);
    if (!s.ok) return report(s, err, err_len);
    p.value = value, p.ref_points = ref_points, p.links = links, p.offsets = offsets, p.logits = logits, p.output = output;
    DType type;
    TeamPlan plan;
    if (!(s = resolve(dtype, p.head_dim, num_levels * p.num_points, vec, groups, &type, &plan)).ok) return report(s, err, err_len);
    p.value_type = p.coord_type = type;
    if (!(s = fgsa::check_params(p)).ok) return report(s, err, err_len);
    switch (plan.vec) {
        case 1: by_dtype(type, p, plan, fgsa_typed<float, 1>, fgsa_typed<double, 1>); break;
        case 2: by_dtype(type, p, plan, fgsa_typed<float, 2>, fgsa_typed<double, 2>); break;
        case 4: by_dtype(type, p, plan, fgsa_typed<float, 4>, fgsa_typed<double, 4>); break;
        default: by_dtype(type, p, plan, fgsa_typed<float, 8>, fgsa_typed<double, 8>); break;
    }
    return report(s, err, err_len);
}
