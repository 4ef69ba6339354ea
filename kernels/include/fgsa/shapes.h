// Shape validation shared by every adapter: tensor dims in, a filled params struct (sizes and contiguous
// strides) or a message naming the tensor, what was expected and what was received out.
//
// The TensorRT plugin, the torch extension and the CPU reference all call these, so a shape error reads
// the same everywhere. Plain C++ (no CUDA), no exceptions: callers decide how to report a failed Status.
#pragma once

#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <initializer_list>

#include "fgsa/params.h"

namespace fgsa {

struct Status {
    bool ok = true;
    char message[320] = {0};
};

inline Status fail(const char* fmt, ...) {
    Status s;
    s.ok = false;
    va_list args;
    va_start(args, fmt);
    std::vsnprintf(s.message, sizeof(s.message), fmt, args);
    va_end(args);
    return s;
}

// Printable "[a, b, c]" of a shape for error messages.
struct ShapeText {
    char text[128] = {0};
    ShapeText(const int64_t* dims, int rank) {
        int n = std::snprintf(text, sizeof(text), "[");
        for (int i = 0; i < rank && n < static_cast<int>(sizeof(text)); ++i) {
            n += std::snprintf(text + n, sizeof(text) - n, i ? ", %lld" : "%lld", static_cast<long long>(dims[i]));
        }
        if (n < static_cast<int>(sizeof(text))) std::snprintf(text + n, sizeof(text) - n, "]");
    }
};

// `hw` holds num_levels (H, W) pairs, as the `spatial_shapes` plugin attribute does.
inline Status make_levels(const int64_t* hw, int32_t num_levels, LevelShapes* out) {
    if (num_levels < 1 || num_levels > kMaxLevels) {
        return fail("spatial_shapes: expected 1..%d (H, W) pairs, got %d", kMaxLevels, num_levels);
    }
    LevelShapes lv{};
    lv.num_levels = num_levels;
    int64_t acc = 0;
    for (int32_t l = 0; l < num_levels; ++l) {
        const int64_t h = hw[2 * l], w = hw[2 * l + 1];
        if (h < 1 || w < 1 || h > (1 << 20) || w > (1 << 20)) {
            return fail("spatial_shapes: level %d must have 1 <= H, W <= 2^20, got (%lld, %lld)", l,
                        static_cast<long long>(h), static_cast<long long>(w));
        }
        lv.height[l] = static_cast<int32_t>(h);
        lv.width[l] = static_cast<int32_t>(w);
        lv.start[l] = acc;
        acc += h * w;
    }
    lv.total = acc;
    *out = lv;
    return Status{};
}

namespace detail {

constexpr int64_t kInt32Max = 2147483647;

// Every dim of a `rank`-D tensor must be in [1, 2^31), except the first `may_be_empty` dims (batch and
// query/keypoint counts), which may be 0: an empty batch is valid and writes nothing.
inline Status check_extents(const char* name, const int64_t* dims, int rank, int may_be_empty) {
    for (int i = 0; i < rank; ++i) {
        const int64_t low = i < may_be_empty ? 0 : 1;
        if (dims[i] < low || dims[i] > kInt32Max) {
            return fail("%s: expected dimensions in [1, 2^31) (batch and query counts may be 0), got %s", name,
                        ShapeText(dims, rank).text);
        }
    }
    return Status{};
}

// Tensor `name` must have dims[i] == want[i] wherever want[i] >= 0.
inline Status check_dims(const char* name, const int64_t* dims, const int64_t* want, int rank, const char* layout) {
    for (int i = 0; i < rank; ++i) {
        if (want[i] >= 0 && dims[i] != want[i]) {
            ShapeText got(dims, rank);
            // Print the expected shape with -1 for "any".
            return fail("%s: expected %s = %s, got %s", name, layout, ShapeText(want, rank).text, got.text);
        }
    }
    return Status{};
}

// The sizes and contiguous strides both ops share: value [B, Len_in, heads, Dh], output [B, queries,
// heads * Dh], P points per level.
inline void set_common(OpParams* p, int64_t B, int64_t queries, int64_t heads, int64_t Dh, int64_t P,
                       const LevelShapes& levels) {
    p->batch = static_cast<int32_t>(B);
    p->head_dim = static_cast<int32_t>(Dh);
    p->num_points = static_cast<int32_t>(P);
    p->levels = levels;
    p->value_stride_head = Dh;
    p->value_stride_pos = heads * Dh;
    p->value_stride_batch = levels.total * heads * Dh;
    p->out_stride_query = heads * Dh;
    p->out_stride_batch = queries * heads * Dh;
}

inline Status check_len_in(const int64_t* value, const LevelShapes& levels) {
    if (value[1] == levels.total) return Status{};
    return fail("value: expected Len_in = sum of H*W over spatial_shapes = %lld, got value of shape %s",
                static_cast<long long>(levels.total), ShapeText(value, 4).text);
}

}  // namespace detail

// value [B, Len_in, M, Dh], sampling_locations [B, Q, M, L, P, 2], attention_weights [B, Q, M, L, P].
// Fills sizes, levels and contiguous strides; pointers and dtypes are the caller's.
inline Status describe_msda(const int64_t* value, const int64_t* loc, const int64_t* weights, const LevelShapes& levels,
                            MsdaParams* p) {
    Status s;
    if (!(s = detail::check_extents("value", value, 4, 1)).ok) return s;
    if (!(s = detail::check_extents("sampling_locations", loc, 6, 2)).ok) return s;
    if (!(s = detail::check_extents("attention_weights", weights, 5, 2)).ok) return s;
    const int64_t B = value[0], M = value[2], Dh = value[3], Q = loc[1], P = loc[4];
    if (!(s = detail::check_len_in(value, levels)).ok) return s;
    const int64_t want_loc[6] = {B, -1, M, levels.num_levels, -1, 2};
    if (!(s = detail::check_dims("sampling_locations", loc, want_loc, 6, "[B, Q, M, L, P, 2]")).ok) return s;
    const int64_t want_w[5] = {B, Q, M, levels.num_levels, P};
    if (!(s = detail::check_dims("attention_weights", weights, want_w, 5, "[B, Q, M, L, P]")).ok) return s;
    detail::set_common(p, B, Q, M, Dh, P, levels);
    p->num_queries = static_cast<int32_t>(Q);
    p->num_heads = static_cast<int32_t>(M);
    return Status{};
}

// value [B, Len_in, Hs*M, Dh], ref_points [B, K, 2], links [B, K, Hs], offsets [B, K, Hs*M, L, P, 2],
// logits [B, K, Hs*M, L*P].
inline Status describe_fgsa(const int64_t* value, const int64_t* ref, const int64_t* links, const int64_t* offsets,
                            const int64_t* logits, const LevelShapes& levels, FgsaParams* p) {
    Status s;
    if (!(s = detail::check_extents("value", value, 4, 1)).ok) return s;
    if (!(s = detail::check_extents("ref_points", ref, 3, 2)).ok) return s;
    if (!(s = detail::check_extents("links", links, 3, 2)).ok) return s;
    if (!(s = detail::check_extents("offsets", offsets, 6, 2)).ok) return s;
    if (!(s = detail::check_extents("logits", logits, 4, 2)).ok) return s;
    const int64_t B = value[0], HM = value[2], Dh = value[3], K = ref[1], Hs = links[2], P = offsets[4];
    if (!(s = detail::check_len_in(value, levels)).ok) return s;
    const int64_t want_ref[3] = {B, -1, 2};
    if (!(s = detail::check_dims("ref_points", ref, want_ref, 3, "[B, K, 2]")).ok) return s;
    const int64_t want_links[3] = {B, K, -1};
    if (!(s = detail::check_dims("links", links, want_links, 3, "[B, K, Hs]")).ok) return s;
    if (HM % Hs != 0) {
        return fail("value: expected dim 2 = Hs*M, a multiple of Hs = links.shape[2] = %lld, got value of shape %s",
                    static_cast<long long>(Hs), ShapeText(value, 4).text);
    }
    const int64_t want_off[6] = {B, K, HM, levels.num_levels, -1, 2};
    if (!(s = detail::check_dims("offsets", offsets, want_off, 6, "[B, K, Hs*M, L, P, 2]")).ok) return s;
    const int64_t want_logits[4] = {B, K, HM, levels.num_levels * P};
    if (!(s = detail::check_dims("logits", logits, want_logits, 4, "[B, K, Hs*M, L*P]")).ok) return s;
    detail::set_common(p, B, K, HM, Dh, P, levels);
    p->num_keypoints = static_cast<int32_t>(K);
    p->num_side_heads = static_cast<int32_t>(Hs);
    p->heads_per_side = static_cast<int32_t>(HM / Hs);
    return Status{};
}

namespace detail {

inline Status check_levels(const LevelShapes& lv) {
    if (lv.num_levels < 1 || lv.num_levels > kMaxLevels) return fail("levels: num_levels %d outside 1..%d", lv.num_levels, kMaxLevels);
    int64_t acc = 0;
    for (int l = 0; l < lv.num_levels; ++l) {
        if (lv.height[l] < 1 || lv.width[l] < 1 || lv.start[l] != acc) {
            return fail("levels: level %d has H=%d W=%d start=%lld, expected positive sizes and start %lld", l,
                        lv.height[l], lv.width[l], static_cast<long long>(lv.start[l]), static_cast<long long>(acc));
        }
        acc += static_cast<int64_t>(lv.height[l]) * lv.width[l];
    }
    if (acc != lv.total) return fail("levels: total %lld != sum of H*W %lld", static_cast<long long>(lv.total), static_cast<long long>(acc));
    return Status{};
}

inline bool valid_dtype(DType t) { return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kFloat64; }

// The checks of the shared part after the op's sizes: element types, then (unless the launch is empty)
// the pointers, value and output first, then the op's own `inputs`.
inline Status check_common(const OpParams& p, const char* what, bool empty, std::initializer_list<const void*> inputs) {
    if (!valid_dtype(p.value_type) || !valid_dtype(p.coord_type)) return fail("%s: unknown dtype", what);
    if (empty) return Status{};
    bool null = !p.value || !p.output;
    for (const void* in : inputs) null = null || !in;
    return null ? fail("%s: null tensor pointer", what) : Status{};
}

}  // namespace detail

// Internal consistency of a params struct filled by any adapter (the launchers and the CPU reference
// call this before touching memory).
inline Status check_params(const MsdaParams& p) {
    Status s;
    if (!(s = detail::check_levels(p.levels)).ok) return s;
    if (p.batch < 0 || p.num_queries < 0 || p.num_heads < 1 || p.head_dim < 1 || p.num_points < 1) {
        return fail("MsdaParams: sizes B=%d Q=%d M=%d Dh=%d P=%d must be positive (B, Q may be 0)", p.batch,
                    p.num_queries, p.num_heads, p.head_dim, p.num_points);
    }
    return detail::check_common(p, "MsdaParams", p.batch == 0 || p.num_queries == 0,
                                {p.sampling_locations, p.attention_weights});
}

inline Status check_params(const FgsaParams& p) {
    Status s;
    if (!(s = detail::check_levels(p.levels)).ok) return s;
    if (p.batch < 0 || p.num_keypoints < 0 || p.num_side_heads < 1 || p.heads_per_side < 1 || p.head_dim < 1 ||
        p.num_points < 1) {
        return fail("FgsaParams: sizes B=%d K=%d Hs=%d M=%d Dh=%d P=%d must be positive (B, K may be 0)", p.batch,
                    p.num_keypoints, p.num_side_heads, p.heads_per_side, p.head_dim, p.num_points);
    }
    return detail::check_common(p, "FgsaParams", p.batch == 0 || p.num_keypoints == 0,
                                {p.ref_points, p.links, p.offsets, p.logits});
}

}  // namespace fgsa
