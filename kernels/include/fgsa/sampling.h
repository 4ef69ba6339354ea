// The sampling math of both ops, written once for the GPU kernels and the CPU reference.
//
// Semantics (fgsa/ops/reference.py, docs/FMMP_MODEL.md §2.3): a point (x, y) in [0, 1] samples level pixel
// (x * W - 0.5, y * H - 0.5) bilinearly (align_corners=False) with zeros outside the map. As in
// Deformable-DETR's CUDA kernel, a point with x <= -1, y <= -1, x >= W or y >= H contributes nothing,
// which equals zero padding; the same test also rejects NaN and huge coordinates before floor().
//
// Each function computes one thread's share of one item: channels [c0, c0 + VEC) and the sampling points
// s = group, group + groups, ... (see fgsa/team.h). T is the value element type, C the coordinate type,
// A the accumulation type.
#pragma once

#include <cstdint>

#include "fgsa/numeric.h"
#include "fgsa/params.h"

namespace fgsa {

// Bilinear sampling at pixel coordinates (x, y) of a H x W level: acc += weight * value for VEC channels.
// I is the element-offset type (int64_t, or int32_t in the item layout where the sizes allow). `base`
// points at the level's first position (this batch, head and channel c0); positions are `pos_stride`
// elements apart.
template <int VEC, typename I, typename T, typename A>
FGSA_HD void accumulate_pixel(const T* base, I pos_stride, int32_t height, int32_t width, A x, A y, A weight,
                              A (&acc)[VEC]) {
    if (!(x > static_cast<A>(-1) && y > static_cast<A>(-1) && x < static_cast<A>(width) &&
          y < static_cast<A>(height))) {
        return;
    }
    const A fx = floor_of(x), fy = floor_of(y);
    const int32_t x0 = static_cast<int32_t>(fx), y0 = static_cast<int32_t>(fy);
    const A lx = x - fx, ly = y - fy;
    const A hx = static_cast<A>(1) - lx, hy = static_cast<A>(1) - ly;
    const int32_t xs[2] = {x0, x0 + 1};
    const int32_t ys[2] = {y0, y0 + 1};
    const A wx[2] = {hx, lx};
    const A wy[2] = {hy, ly};
FGSA_UNROLL
    for (int j = 0; j < 2; ++j) {
        if (ys[j] < 0 || ys[j] >= height) continue;
FGSA_UNROLL
        for (int i = 0; i < 2; ++i) {
            if (xs[i] < 0 || xs[i] >= width) continue;
            A v[VEC];
            load_vec<VEC>(base + (static_cast<I>(ys[j]) * width + xs[i]) * pos_stride, v);
            const A w = weight * wy[j] * wx[i];
FGSA_UNROLL
            for (int c = 0; c < VEC; ++c) acc[c] += w * v[c];
        }
    }
}

// acc += weight * bilinear(level at (loc_x, loc_y)) for VEC channels: a point (x, y) in [0, 1] samples
// pixel (x * W - 0.5, y * H - 0.5), with 64-bit offsets. `base` points at (level start, this batch, this
// head, c0); consecutive map positions are `pos_stride` elements apart.
template <int VEC, typename T, typename A>
FGSA_HD void accumulate_bilinear(const T* base, int64_t pos_stride, int32_t height, int32_t width, A loc_x, A loc_y,
                                 A weight, A (&acc)[VEC]) {
    accumulate_pixel<VEC, int64_t>(base, pos_stride, height, width,
                                   loc_x * static_cast<A>(width) - static_cast<A>(0.5),
                                   loc_y * static_cast<A>(height) - static_cast<A>(0.5), weight, acc);
}

// MSDA: item = (b, q, h). Adds this thread's sampling points into acc.
template <int VEC, typename T, typename C, typename A>
FGSA_HD void msda_partial(const MsdaParams& p, int64_t item, int32_t group, int32_t groups, int32_t c0,
                          A (&acc)[VEC]) {
    const int32_t h = static_cast<int32_t>(item % p.num_heads);
    const int64_t bq = item / p.num_heads;
    const int32_t b = static_cast<int32_t>(bq / p.num_queries);
    const int32_t L = p.levels.num_levels, P = p.num_points, LP = L * P;
    const C* loc = static_cast<const C*>(p.sampling_locations) + item * LP * 2;
    const C* aw = static_cast<const C*>(p.attention_weights) + item * LP;
    const T* head_base = static_cast<const T*>(p.value) + b * p.value_stride_batch + h * p.value_stride_head + c0;
    for (int32_t s = group; s < LP; s += groups) {
        const int32_t l = s / P;
        accumulate_bilinear<VEC>(head_base + p.levels.start[l] * p.value_stride_pos, p.value_stride_pos,
                                 p.levels.height[l], p.levels.width[l], widen<A>(loc[2 * s]),
                                 widen<A>(loc[2 * s + 1]), widen<A>(aw[s]), acc);
    }
}

// Where item (b, q, h) of MSDA writes channel c0.
FGSA_HD int64_t msda_out_offset(const MsdaParams& p, int64_t item, int32_t c0) {
    const int32_t h = static_cast<int32_t>(item % p.num_heads);
    const int64_t bq = item / p.num_heads;
    const int64_t b = bq / p.num_queries, q = bq % p.num_queries;
    return b * p.out_stride_batch + q * p.out_stride_query + static_cast<int64_t>(h) * p.head_dim + c0;
}

// FGSAAttention: item = (b, k, hm) with hm = side_head * M + m. The side head's reference point is the
// point of keypoint links[b, k, side_head]; a link outside [0, K) leaves acc untouched (output zero).
// The softmax over the item's L*P logits is recomputed by every thread of the team: L*P is small, the
// logits are shared through L1, and no cross-thread step is needed before sampling.
template <int VEC, typename T, typename C, typename A>
FGSA_HD void fgsa_partial(const FgsaParams& p, int64_t item, int32_t group, int32_t groups, int32_t c0,
                          A (&acc)[VEC]) {
    const int32_t HM = p.num_side_heads * p.heads_per_side;
    const int32_t hm = static_cast<int32_t>(item % HM);
    const int64_t bk = item / HM;
    const int32_t b = static_cast<int32_t>(bk / p.num_keypoints);
    const int32_t side = hm / p.heads_per_side;
    const int32_t link = p.links[bk * p.num_side_heads + side];
    if (link < 0 || link >= p.num_keypoints) return;

    const C* ref = static_cast<const C*>(p.ref_points) + (static_cast<int64_t>(b) * p.num_keypoints + link) * 2;
    const A ref_x = widen<A>(ref[0]), ref_y = widen<A>(ref[1]);

    const int32_t L = p.levels.num_levels, P = p.num_points, LP = L * P;
    const C* logit = static_cast<const C*>(p.logits) + item * LP;
    A top = widen<A>(logit[0]);
    for (int32_t s = 1; s < LP; ++s) {
        const A v = widen<A>(logit[s]);
        top = v > top ? v : top;
    }
    A denom = 0;
    for (int32_t s = 0; s < LP; ++s) denom += exp_of(widen<A>(logit[s]) - top);
    const A inv_denom = static_cast<A>(1) / denom;

    const C* off = static_cast<const C*>(p.offsets) + item * LP * 2;
    const T* head_base = static_cast<const T*>(p.value) + b * p.value_stride_batch + hm * p.value_stride_head + c0;
    for (int32_t s = group; s < LP; s += groups) {
        const int32_t l = s / P;
        const int32_t H = p.levels.height[l], W = p.levels.width[l];
        // Offsets are in level pixels: x is divided by the level width, y by its height.
        const A loc_x = ref_x + widen<A>(off[2 * s]) / static_cast<A>(W);
        const A loc_y = ref_y + widen<A>(off[2 * s + 1]) / static_cast<A>(H);
        const A weight = exp_of(widen<A>(logit[s]) - top) * inv_denom;
        accumulate_bilinear<VEC>(head_base + p.levels.start[l] * p.value_stride_pos, p.value_stride_pos, H, W, loc_x,
                                 loc_y, weight, acc);
    }
}

FGSA_HD int64_t fgsa_out_offset(const FgsaParams& p, int64_t item, int32_t c0) {
    const int32_t HM = p.num_side_heads * p.heads_per_side;
    const int32_t hm = static_cast<int32_t>(item % HM);
    const int64_t bk = item / HM;
    const int64_t b = bk / p.num_keypoints, k = bk % p.num_keypoints;
    return b * p.out_stride_batch + k * p.out_stride_query + static_cast<int64_t>(hm) * p.head_dim + c0;
}

FGSA_HD int64_t msda_items(const MsdaParams& p) {
    return static_cast<int64_t>(p.batch) * p.num_queries * p.num_heads;
}
FGSA_HD int64_t fgsa_items(const FgsaParams& p) {
    return static_cast<int64_t>(p.batch) * p.num_keypoints * p.num_side_heads * p.heads_per_side;
}

}  // namespace fgsa
