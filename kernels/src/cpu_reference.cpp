// CPU reference of both ops, compiled by the host compiler from the same sampling math and thread
// decomposition as the CUDA kernels (fgsa/sampling.h, fgsa/team.h), behind a C ABI for ctypes.
//
// It walks the GPU's threads one by one: for each item, every lane of its team computes its partial sum
// exactly as the kernel would, and the lanes that share channels are added before the store. So CI checks
// the kernels' indexing, border handling, link gather and point split without a GPU. Both thread layouts
// (LaunchConfig::layout, fgsa/params.h) run here through the same functions as on the GPU; for the item
// layout the warp shuffles are replaced by what the source lane holds (fgsa/item_layout.h).
#include <cstdint>
#include <algorithm>
#include <cstring>
#include <vector>

#include "fgsa/item_layout.h"
#include "fgsa/op_traits.h"
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

// Runs every lane of every team of the launch `plan` describes, for op Params (fgsa/op_traits.h): each lane's
// partial sum as the team kernel computes it, then the lanes that share channels added before the store.
template <typename Params, typename T, int VEC>
void run_teams(const Params& p, const TeamPlan& plan) {
    using Op = fgsa::OpTraits<Params>;
    using A = T;  // accumulate in the element type: float for FP32, double for the exact FP64 check
    const int64_t items = Op::items(p);
    std::vector<A> sums(static_cast<size_t>(plan.tph) * VEC);
    T* out = static_cast<T*>(p.output);
    for (int64_t item = 0; item < items; ++item) {
        std::fill(sums.begin(), sums.end(), A(0));
        for (int32_t lane = 0; lane < plan.team; ++lane) {
            const fgsa::ThreadWork w = fgsa::decompose_thread(item * plan.team + lane, plan);
            A acc[VEC] = {};
            Op::template partial<VEC, T, T, A>(p, w.item, w.group, plan.groups, w.c0, acc);
            for (int c = 0; c < VEC; ++c) sums[static_cast<size_t>(w.c0) + c] += acc[c];
        }
        for (int32_t c0 = 0; c0 < p.head_dim; c0 += VEC) {
            A total[VEC];
            for (int c = 0; c < VEC; ++c) total[c] = sums[static_cast<size_t>(c0) + c];
            fgsa::store_vec<VEC>(out + Op::out_offset(p, item, c0), total);
        }
    }
}

// ---- item layout -------------------------------------------------------------------------------------------

// Runs every lane of every team of the item layout. Per item: step 1 (FGSA_Attention: every lane's softmax
// statistics, combined by the GPU's xor butterfly), the item's stager, then each lane's steps 2-3 through
// item_lane_accumulate, its exchange answering with what the source lane staged (the same values on every
// lane).
template <typename Params, typename T, int VEC, int L_, int P_, typename I>
void run_item_teams(const Params& p, const TeamPlan& plan) {
    using Op = fgsa::OpTraits<Params>;
    using A = T;
    const int64_t items = Op::items(p);
    std::vector<A> sums(static_cast<size_t>(plan.tph) * VEC);
    std::vector<fgsa::SoftmaxStats<A>> stats(static_cast<size_t>(plan.team)), next(stats.size());
    T* out = static_cast<T*>(p.output);
    const int32_t LP = fgsa::item_levels<L_, P_>(p) * fgsa::item_points<L_, P_>(p);
    for (int64_t it = 0; it < items; ++it) {
        const I item = static_cast<I>(it);
        std::fill(sums.begin(), sums.end(), A(0));
        fgsa::SoftmaxStats<A> sm{0, 0};
        if constexpr (Op::kSoftmax) {
            for (int32_t lane = 0; lane < plan.team; ++lane) {
                stats[lane] = Op::template softmax_lane<L_, P_, I, T, A>(p, item, lane, plan.team);
            }
            for (int32_t offset = 1; offset < plan.team; offset <<= 1) {
                for (int32_t lane = 0; lane < plan.team; ++lane) {
                    next[lane] = fgsa::softmax_combine(stats[lane], stats[lane ^ offset]);
                }
                stats.swap(next);
            }
            sm = stats[0];
        }
        const auto stage = Op::template stager<L_, P_, I, T, A>(p, item, true, sm);
        const auto exchange = [&](const fgsa::Staged<A>&, int32_t, int32_t s) {
            return s < LP ? stage(s) : fgsa::Staged<A>{0, 0, 0};
        };
        for (int32_t lane = 0; lane < plan.team; ++lane) {
            const int32_t group = lane / plan.tph, c0 = (lane % plan.tph) * VEC;
            A acc[VEC] = {};
            fgsa::item_lane_accumulate<VEC, L_, P_, I>(p, plan, lane, group, stage.valid,
                                                       Op::template item_value<I, T>(p, item, c0), stage, exchange,
                                                       acc);
            for (int c = 0; c < VEC; ++c) sums[static_cast<size_t>(c0) + c] += acc[c];
        }
        for (int32_t c0 = 0; c0 < p.head_dim; c0 += VEC) {
            A total[VEC];
            for (int c = 0; c < VEC; ++c) total[c] = sums[static_cast<size_t>(c0) + c];
            fgsa::store_vec<VEC>(out + Op::template item_out_offset<I>(p, item, c0), total);
        }
    }
}

// ---- dispatch ----------------------------------------------------------------------------------------------

constexpr int32_t kLayoutTeam = static_cast<int32_t>(fgsa::Layout::kTeam);
constexpr int32_t kLayoutItem = static_cast<int32_t>(fgsa::Layout::kItem);

// The CPU reference runs one element type for values and coordinates: float32 or float64. Plans the
// layout as the GPU launchers do (team: plan_team; item: plan_item_layout).
template <typename Params>
Status resolve(const Params& p, int64_t items, int32_t dtype, int32_t vec, int32_t groups, int32_t layout,
               int32_t index_bits, DType* type, TeamPlan* plan) {
    if (dtype != static_cast<int32_t>(DType::kFloat32) && dtype != static_cast<int32_t>(DType::kFloat64)) {
        return fgsa::fail("dtype: expected 0 (float32) or 2 (float64), got %d", dtype);
    }
    *type = static_cast<DType>(dtype);
    if (vec != 1 && vec != 2 && vec != 4 && vec != 8) return fgsa::fail("vec: expected 1, 2, 4 or 8, got %d", vec);
    if (layout != kLayoutTeam && layout != kLayoutItem) {
        return fgsa::fail("layout: expected %d (team) or %d (item), got %d", kLayoutTeam, kLayoutItem, layout);
    }
    const int32_t samples = p.levels.num_levels * p.num_points;
    const bool ok = layout == kLayoutItem ? fgsa::plan_item_layout(p, vec, groups, index_bits, items, plan)
                                          : (index_bits == 0 || index_bits == 64) &&
                                                fgsa::plan_team(p.head_dim, samples, vec, groups, plan);
    if (!ok) {
        return fgsa::fail("vec/groups: no thread layout with vec=%d groups=%d index_bits=%d for head_dim=%d and %d "
                          "samples (%s layout)", vec, groups, index_bits, p.head_dim, samples,
                          layout == kLayoutItem ? "item" : "team");
    }
    return Status{};
}

// The element type and vec the plan names: run<T, VEC>(params, plan) of a runner.
template <typename Runner, typename Params>
void by_vec(DType type, const Params& p, const TeamPlan& plan) {
    const bool f32 = type == DType::kFloat32;
    switch (plan.vec) {
        case 1: f32 ? Runner::template run<float, 1>(p, plan) : Runner::template run<double, 1>(p, plan); break;
        case 2: f32 ? Runner::template run<float, 2>(p, plan) : Runner::template run<double, 2>(p, plan); break;
        case 4: f32 ? Runner::template run<float, 4>(p, plan) : Runner::template run<double, 4>(p, plan); break;
        default: f32 ? Runner::template run<float, 8>(p, plan) : Runner::template run<double, 8>(p, plan); break;
    }
}

struct TeamRunner {
    template <typename T, int VEC, typename Params>
    static void run(const Params& p, const TeamPlan& plan) { run_teams<Params, T, VEC>(p, plan); }
};
template <int L_, int P_, typename I>
struct ItemRunner {
    template <typename T, int VEC, typename Params>
    static void run(const Params& p, const TeamPlan& plan) { run_item_teams<Params, T, VEC, L_, P_, I>(p, plan); }
};

// Runs the layout, element type and instantiation the plan names, as the GPU dispatch does (fixed 3 x 4
// sizes with 32-bit indices, else runtime sizes).
template <typename Params>
void dispatch_cpu(DType type, const Params& p, const TeamPlan& plan) {
    if (plan.layout != fgsa::Layout::kItem) {
        by_vec<TeamRunner>(type, p, plan);
    } else if (plan.index_bits == 32 && fgsa::item_uses_fixed_sizes(p, plan)) {
        by_vec<ItemRunner<fgsa::kFixedLevels, fgsa::kFixedPoints, int32_t>>(type, p, plan);
    } else if (plan.index_bits == 32) {
        by_vec<ItemRunner<0, 0, int32_t>>(type, p, plan);
    } else {
        by_vec<ItemRunner<0, 0, int64_t>>(type, p, plan);
    }
}

// The part of both C entry points after the shapes: plan as the GPU launchers do, then run. `p` has its
// sizes and pointers; the CPU reference runs one element type (float32 or float64) for values and
// coordinates.
template <typename Params>
int32_t run_op(Params& p, int32_t dtype, int32_t vec, int32_t groups, int32_t layout, int32_t index_bits, char* err,
               int32_t err_len) {
    DType type = DType::kFloat32;
    TeamPlan plan;
    Status s = resolve(p, fgsa::OpTraits<Params>::items(p), dtype, vec, groups, layout, index_bits, &type, &plan);
    if (!s.ok) return report(s, err, err_len);
    p.value_type = p.coord_type = type;
    if (!(s = fgsa::check_params(p)).ok) return report(s, err, err_len);
    dispatch_cpu(type, p, plan);
    return report(s, err, err_len);
}

}  // namespace

// value [B, Len_in, M, Dh], sampling_locations [B, Q, M, L, P, 2], attention_weights [B, Q, M, L, P],
// output [B, Q, M*Dh], all contiguous, all of `dtype` (0 float32, 2 float64). spatial_shapes holds
// num_levels (H, W) pairs. vec/groups/layout/index_bits choose the GPU thread layout to emulate (groups 0 =
// automatic; layout 1 team, 2 item; index_bits 0 = automatic). Returns 0, or 1 with a message in err.
FGSA_CPU_API int32_t fgsa_cpu_msda_layout(const void* value, const void* sampling_locations,
                                          const void* attention_weights, void* output, int32_t dtype,
                                          const int64_t* value_shape, const int64_t* locations_shape,
                                          const int64_t* weights_shape, const int64_t* spatial_shapes,
                                          int32_t num_levels, int32_t vec, int32_t groups, int32_t layout,
                                          int32_t index_bits, char* err, int32_t err_len) {
    fgsa::LevelShapes levels;
    Status s = fgsa::make_levels(spatial_shapes, num_levels, &levels);
    if (!s.ok) return report(s, err, err_len);
    fgsa::MsdaParams p{};
    if (!(s = fgsa::describe_msda(value_shape, locations_shape, weights_shape, levels, &p)).ok) return report(s, err, err_len);
    p.value = value, p.sampling_locations = sampling_locations, p.attention_weights = attention_weights, p.output = output;
    return run_op(p, dtype, vec, groups, layout, index_bits, err, err_len);
}

// The team layout (the first ABI of this library; kept for existing callers).
FGSA_CPU_API int32_t fgsa_cpu_msda(const void* value, const void* sampling_locations, const void* attention_weights,
                                   void* output, int32_t dtype, const int64_t* value_shape,
                                   const int64_t* locations_shape, const int64_t* weights_shape,
                                   const int64_t* spatial_shapes, int32_t num_levels, int32_t vec, int32_t groups,
                                   char* err, int32_t err_len) {
    return fgsa_cpu_msda_layout(value, sampling_locations, attention_weights, output, dtype, value_shape,
                                locations_shape, weights_shape, spatial_shapes, num_levels, vec, groups, kLayoutTeam,
                                0, err, err_len);
}

// value [B, Len_in, Hs*M, Dh], ref_points [B, K, 2], links [B, K, Hs] int32, offsets [B, K, Hs*M, L, P, 2],
// logits [B, K, Hs*M, L*P], output [B, K, Hs*M*Dh]; float tensors of `dtype`, all contiguous.
FGSA_CPU_API int32_t fgsa_cpu_attention_layout(const void* value, const void* ref_points, const int32_t* links,
                                               const void* offsets, const void* logits, void* output, int32_t dtype,
                                               const int64_t* value_shape, const int64_t* ref_shape,
                                               const int64_t* links_shape, const int64_t* offsets_shape,
                                               const int64_t* logits_shape, const int64_t* spatial_shapes,
                                               int32_t num_levels, int32_t vec, int32_t groups, int32_t layout,
                                               int32_t index_bits, char* err, int32_t err_len) {
    fgsa::LevelShapes levels;
    Status s = fgsa::make_levels(spatial_shapes, num_levels, &levels);
    if (!s.ok) return report(s, err, err_len);
    fgsa::FgsaParams p{};
    s = fgsa::describe_fgsa(value_shape, ref_shape, links_shape, offsets_shape, logits_shape, levels, &p);
    if (!s.ok) return report(s, err, err_len);
    p.value = value, p.ref_points = ref_points, p.links = links, p.offsets = offsets, p.logits = logits, p.output = output;
    return run_op(p, dtype, vec, groups, layout, index_bits, err, err_len);
}

// The team layout (the first ABI of this library; kept for existing callers).
FGSA_CPU_API int32_t fgsa_cpu_attention(const void* value, const void* ref_points, const int32_t* links,
                                        const void* offsets, const void* logits, void* output, int32_t dtype,
                                        const int64_t* value_shape, const int64_t* ref_shape,
                                        const int64_t* links_shape, const int64_t* offsets_shape,
                                        const int64_t* logits_shape, const int64_t* spatial_shapes,
                                        int32_t num_levels, int32_t vec, int32_t groups, char* err, int32_t err_len) {
    return fgsa_cpu_attention_layout(value, ref_points, links, offsets, logits, output, dtype, value_shape, ref_shape,
                                     links_shape, offsets_shape, logits_shape, spatial_shapes, num_levels, vec, groups,
                                     kLayoutTeam, 0, err, err_len);
}

// The index width (32 or 64) the item layout plans for `items` items of an op with tiny tensors (one
// batch, value and output strides of 1), so that only the thread count can force 64 bits; 0 where the item
// layout cannot run these sizes. For tests of the 32-bit guard.
FGSA_CPU_API int32_t fgsa_cpu_item_index_bits(int32_t head_dim, int32_t samples, int32_t vec, int32_t groups,
                                              int64_t items) {
    fgsa::MsdaParams p{};
    p.batch = 1;
    p.head_dim = head_dim;
    p.num_points = samples;
    p.levels.num_levels = 1;
    p.value_stride_batch = p.out_stride_batch = 1;
    TeamPlan plan;
    return fgsa::plan_item_layout(p, vec, groups, 0, items, &plan) ? plan.index_bits : 0;
}

// The item layout's automatic group count for `items` items (fgsa/team.h plan_item_team), or 0 where the
// item layout cannot run these sizes; for tests and gpu_check reports.
FGSA_CPU_API int32_t fgsa_cpu_item_groups(int32_t head_dim, int32_t samples, int32_t vec, int64_t items) {
    TeamPlan plan;
    return fgsa::plan_item_team(head_dim, samples, vec, 0, items, &plan) ? plan.groups : 0;
}
