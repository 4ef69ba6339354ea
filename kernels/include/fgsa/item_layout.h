// The item layout's math (LaunchConfig::layout = kItem), written once for the CUDA kernels and the CPU
// reference. See fgsa/params.h for what distinguishes it from the team layout of fgsa/sampling.h.
//
// A team of `team` lanes computes one item (fgsa/team.h: tph channel lanes x G groups). Per item:
//   1. (FGSA_Attention) softmax statistics: lane j folds the logits s = j, j + team, ... into a running
//      (max, sum of exp) pair; the team combines the pairs with an xor butterfly, so every lane holds the
//      same totals. At each step lane j computes combine(own, partner) and the partner combine(partner,
//      own); the lanes agree bit for bit because softmax_combine is exactly commutative, which takes its
//      two products rounded on their own (mul_rounded: no FMA contraction, which would round one product
//      and not the other);
//   2. staging, in chunks of `team` samples: lane j stages sample chunk + j (pixel coordinates and final
//      weight, computed once per item);
//   3. accumulation: the lane of group g and channels c0 takes the chunk's samples chunk + g + k*G
//      (k < tph) from the lanes that staged them and samples the value map;
//   4. the groups' partial sums meet as in the team layout (group 0 stores).
// The exchanges of steps 1 and 3 are the only parts that differ between GPU (warp shuffles) and CPU
// (the reference computes what the source lane holds); every value is computed by the functions here.
//
// L_ and P_ are the number of levels and points when known at compile time (0 = read from the params);
// I is the element-offset type (int32_t where every tensor is below 2^31 elements, else int64_t).
#pragma once

#include <cstdint>

#include "fgsa/numeric.h"
#include "fgsa/params.h"
#include "fgsa/sampling.h"
#include "fgsa/team.h"

namespace fgsa {

// One sample as the accumulating lanes need it: pixel coordinates on its level and its final weight.
template <typename A>
struct Staged {
    A x, y, w;
};

// Running softmax statistics of some logits: max m and sum of exp(logit - m). d == 0: no logit yet.
template <typename A>
struct SoftmaxStats {
    A m, d;
};

template <typename A>
FGSA_HD SoftmaxStats<A> softmax_combine(SoftmaxStats<A> a, SoftmaxStats<A> b) {
    if (a.d == static_cast<A>(0)) return b;
    if (b.d == static_cast<A>(0)) return a;
    const A m = a.m > b.m ? a.m : b.m;
    return {m, mul_rounded(a.d, exp_of(a.m - m)) + mul_rounded(b.d, exp_of(b.m - m))};
}

template <int L_, int P_, typename Params>
FGSA_HD int32_t item_levels(const Params& p) {
    return L_ > 0 ? L_ : p.levels.num_levels;
}
template <int L_, int P_, typename Params>
FGSA_HD int32_t item_points(const Params& p) {
    return P_ > 0 ? P_ : p.num_points;
}

// ---- FGSA_MSDA ---------------------------------------------------------------------------------------------

template <int L_, int P_, typename I, typename C, typename A>
FGSA_HD Staged<A> msda_item_stage(const MsdaParams& p, I item, int32_t s) {
    const int32_t P = item_points<L_, P_>(p), LP = item_levels<L_, P_>(p) * P;
    const int32_t l = s / P;
    const C* loc = static_cast<const C*>(p.sampling_locations) + (item * LP + s) * 2;
    const C* aw = static_cast<const C*>(p.attention_weights) + item * LP + s;
    return {widen<A>(loc[0]) * static_cast<A>(p.levels.width[l]) - static_cast<A>(0.5),
            widen<A>(loc[1]) * static_cast<A>(p.levels.height[l]) - static_cast<A>(0.5), widen<A>(aw[0])};
}

// Value of item (b, q, h) at channel c0 of the first position.
template <typename I, typename T>
FGSA_HD const T* msda_item_value(const MsdaParams& p, I item, int32_t c0) {
    const I h = item % p.num_heads;
    const I b = item / p.num_heads / p.num_queries;
    return static_cast<const T*>(p.value) + b * static_cast<I>(p.value_stride_batch) +
           h * static_cast<I>(p.value_stride_head) + c0;
}

template <typename I>
FGSA_HD I msda_item_out_offset(const MsdaParams& p, I item, int32_t c0) {
    const I h = item % p.num_heads, bq = item / p.num_heads;
    return bq / p.num_queries * static_cast<I>(p.out_stride_batch) +
           bq % p.num_queries * static_cast<I>(p.out_stride_query) + h * p.head_dim + c0;
}

// ---- FGSA_Attention ----------------------------------------------------------------------------------------

// The side head's reference point; false (and nothing read) when the link is outside [0, K).
template <typename I, typename C, typename A>
FGSA_HD bool fgsa_item_ref(const FgsaParams& p, I item, A* ref_x, A* ref_y) {
    const int32_t HM = p.num_side_heads * p.heads_per_side;
    const I bk = item / HM;
    const int32_t side = static_cast<int32_t>(item % HM) / p.heads_per_side;
    const int32_t link = p.links[bk * p.num_side_heads + side];
    if (link < 0 || link >= p.num_keypoints) return false;
    const C* ref = static_cast<const C*>(p.ref_points) + (bk / p.num_keypoints * p.num_keypoints + link) * 2;
    *ref_x = widen<A>(ref[0]);
    *ref_y = widen<A>(ref[1]);
    return true;
}

// Step 1 of one lane: the softmax statistics of logits s = lane, lane + team, ...
template <int L_, int P_, typename I, typename C, typename A>
FGSA_HD SoftmaxStats<A> fgsa_item_softmax_lane(const FgsaParams& p, I item, int32_t lane, int32_t team) {
    const int32_t LP = item_levels<L_, P_>(p) * item_points<L_, P_>(p);
    const C* logit = static_cast<const C*>(p.logits) + item * LP;
    SoftmaxStats<A> st{0, 0};
    for (int32_t s = lane; s < LP; s += team) st = softmax_combine(st, SoftmaxStats<A>{widen<A>(logit[s]), 1});
    return st;
}

// Step 2: sample s of the item. Offsets are in level pixels, so the pixel coordinate is ref * W + offset
// - 0.5 (= (ref + offset / W) * W - 0.5 without a division).
template <int L_, int P_, typename I, typename C, typename A>
FGSA_HD Staged<A> fgsa_item_stage(const FgsaParams& p, I item, int32_t s, A ref_x, A ref_y, SoftmaxStats<A> sm,
                                  A inv_denom) {
    const int32_t P = item_points<L_, P_>(p), LP = item_levels<L_, P_>(p) * P;
    const int32_t l = s / P;
    const C* off = static_cast<const C*>(p.offsets) + (item * LP + s) * 2;
    const A logit = widen<A>(static_cast<const C*>(p.logits)[item * LP + s]);
    return {ref_x * static_cast<A>(p.levels.width[l]) + widen<A>(off[0]) - static_cast<A>(0.5),
            ref_y * static_cast<A>(p.levels.height[l]) + widen<A>(off[1]) - static_cast<A>(0.5),
            exp_of(logit - sm.m) * inv_denom};
}

template <typename I, typename T>
FGSA_HD const T* fgsa_item_value(const FgsaParams& p, I item, int32_t c0) {
    const int32_t HM = p.num_side_heads * p.heads_per_side;
    const I hm = item % HM;
    const I b = item / HM / p.num_keypoints;
    return static_cast<const T*>(p.value) + b * static_cast<I>(p.value_stride_batch) +
           hm * static_cast<I>(p.value_stride_head) + c0;
}

template <typename I>
FGSA_HD I fgsa_item_out_offset(const FgsaParams& p, I item, int32_t c0) {
    const int32_t HM = p.num_side_heads * p.heads_per_side;
    const I hm = item % HM, bk = item / HM;
    return bk / p.num_keypoints * static_cast<I>(p.out_stride_batch) +
           bk % p.num_keypoints * static_cast<I>(p.out_stride_query) + hm * p.head_dim + c0;
}

// ---- both ops ----------------------------------------------------------------------------------------------

// Steps 2 and 3 of one lane (group `group`, channels from `value`). stage(s) -> Staged is this lane's own
// staging; exchange(own, src_lane, s) returns sample s as lane src_lane of the team staged it. On the GPU
// every lane of the warp must call this with the same plan (the exchange is a shuffle).
template <int VEC, int L_, int P_, typename I, typename T, typename A, typename Params, typename Stage,
          typename Exchange>
FGSA_HD void item_lane_accumulate(const Params& p, const TeamPlan& plan, int32_t lane, int32_t group, bool valid,
                                  const T* value, Stage stage, Exchange exchange, A (&acc)[VEC]) {
    const int32_t L = item_levels<L_, P_>(p), P = item_points<L_, P_>(p), LP = L * P;
    const I pos_stride = static_cast<I>(p.value_stride_pos);
    for (int32_t chunk = 0; chunk < LP; chunk += plan.team) {
        const Staged<A> own = chunk + lane < LP ? stage(chunk + lane) : Staged<A>{0, 0, 0};
        for (int32_t k = 0; k < plan.tph; ++k) {
            const int32_t src = group + k * plan.groups;
            const Staged<A> st = exchange(own, src, chunk + src);
            const int32_t s = chunk + src;
            if (valid && s < LP) {
                const int32_t l = s / P;
                accumulate_pixel<VEC, I>(value + static_cast<I>(p.levels.start[l]) * pos_stride, pos_stride,
                                         p.levels.height[l], p.levels.width[l], st.x, st.y, st.w, acc);
            }
        }
    }
}

// Whether the item kernel's 32-bit thread index holds every thread of its grid: the thread count (passed
// to the kernel as I) and, the grid being whole blocks of kBlockThreads, the index of the last block's last
// padding thread (blockIdx.x * blockDim.x + threadIdx.x, computed before the `t < num_threads` test).
inline bool item_threads_fit_int32(int64_t threads) {
    const int64_t limit = 2147483647LL;
    const int64_t grid = (threads + kBlockThreads - 1) / kBlockThreads * kBlockThreads;
    return threads <= limit && grid - 1 <= limit;
}

// Whether every element offset of the item layout fits in int32 (all tensors and the thread indices).
template <typename Params>
inline bool item_offsets_fit_int32(const Params& p, int64_t items, int64_t samples, int32_t team) {
    const int64_t limit = 2147483647LL;
    const int64_t value = static_cast<int64_t>(p.batch) * p.value_stride_batch;
    const int64_t out = static_cast<int64_t>(p.batch) * p.out_stride_batch;
    return value < limit && out < limit && items * samples * 2 < limit && item_threads_fit_int32(items * team);
}

// The item layout's plan for `items` items (the GPU launchers and the CPU reference both call this):
// groups from the item count (plan_item_team), index_bits 32 where the sizes allow unless 64 is asked for;
// false when asked for 32 bits that do not fit, or for a layout the sizes do not allow.
template <typename Params>
inline bool plan_item_layout(const Params& p, int32_t vec, int32_t groups, int32_t index_bits, int64_t items,
                             TeamPlan* plan) {
    if (index_bits != 0 && index_bits != 32 && index_bits != 64) return false;
    const int32_t samples = p.levels.num_levels * p.num_points;
    TeamPlan item_plan;
    if (!plan_item_team(p.head_dim, samples, vec, groups, items, &item_plan)) return false;
    const bool fits = item_offsets_fit_int32(p, items, samples, item_plan.team);
    if (index_bits == 32 && !fits) return false;
    item_plan.index_bits = index_bits == 64 || !fits ? 64 : 32;
    *plan = item_plan;
    return true;
}

// The FMMP pyramid, 3 levels x 4 points, has its own instantiation (L and P compile-time constants) for
// 32-bit indices; other sizes, and 64-bit indices, read L and P from the params.
constexpr int kFixedLevels = 3;
constexpr int kFixedPoints = 4;

template <typename Params>
inline bool item_uses_fixed_sizes(const Params& p, const TeamPlan& plan) {
    return plan.index_bits == 32 && p.levels.num_levels == kFixedLevels && p.num_points == kFixedPoints;
}

}  // namespace fgsa
