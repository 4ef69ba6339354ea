// Host drivers of the three ONNX Runtime ops: items [begin, end) of one op, computed by the kernels'
// own sampling functions (fgsa/sampling.h). No ONNX Runtime types here; ort_ops.cpp validates the
// inputs, fills the params through fgsa/shapes.h and spreads item ranges over ONNX Runtime's threads.
//
// One call computes whole items: group 0 of 1 (every sampling point), and the head's channels in chunks
// of VEC. With VEC = head_dim (FMMP: 32) the location, softmax and bilinear weights of each point are
// computed once per item and the channel loop vectorises.
#pragma once

#include <cstdint>

#include "fgsa/params.h"
#include "fgsa/sampling.h"
#include "half.h"

namespace fgsa::ort {

// Items are visited head-major: position j = (b, head, query) of the order below covers item
// (b, query, head). All queries of one head read only that head's value slice (Len_in x Dh: 172 KB for
// FMMP), which stays in cache, where the kernels' natural order would jump across the whole value
// tensor (11 MB) from one item to the next: measured 3-4x slower on a 2-core EPYC.
inline int64_t head_major_item(int64_t j, int64_t heads, int64_t queries) {
    const int64_t per_batch = heads * queries;
    const int64_t b = j / per_batch, rest = j % per_batch;
    return (b * queries + rest % queries) * heads + rest / queries;
}

inline int64_t heads_of(const MsdaParams& p) { return p.num_heads; }
inline int64_t queries_of(const MsdaParams& p) { return p.num_queries; }
inline int64_t heads_of(const FgsaParams& p) { return static_cast<int64_t>(p.num_side_heads) * p.heads_per_side; }
inline int64_t queries_of(const FgsaParams& p) { return p.num_keypoints; }

// Items at head-major positions [begin, end).
template <int VEC, typename T, typename C, typename Params, typename Partial, typename OutOffset>
void run_items(const Params& p, int64_t begin, int64_t end, Partial partial, OutOffset out_offset) {
    T* out = static_cast<T*>(p.output);
    const int64_t heads = heads_of(p), queries = queries_of(p);
    for (int64_t j = begin; j < end; ++j) {
        const int64_t item = head_major_item(j, heads, queries);
        for (int32_t c0 = 0; c0 < p.head_dim; c0 += VEC) {
            float acc[VEC] = {};
            partial(p, item, 0, 1, c0, acc);
            T* dst = out + out_offset(p, item, c0);
            for (int c = 0; c < VEC; ++c) store(dst + c, acc[c]);
        }
    }
}

template <int VEC, typename T, typename C>
void msda_items_range(const MsdaParams& p, int64_t begin, int64_t end) {
    run_items<VEC, T, C>(p, begin, end, msda_partial<VEC, T, C, float>, msda_out_offset);
}

template <int VEC, typename T, typename C>
void fgsa_items_range(const FgsaParams& p, int64_t begin, int64_t end) {
    run_items<VEC, T, C>(p, begin, end, fgsa_partial<VEC, T, C, float>, fgsa_out_offset);
}

// The widest channel chunk that divides head_dim.
inline int channel_chunk(int32_t head_dim) {
    for (int v : {32, 16, 8, 4, 2}) {
        if (head_dim % v == 0) return v;
    }
    return 1;
}

using MsdaFn = void (*)(const MsdaParams&, int64_t, int64_t);
using FgsaFn = void (*)(const FgsaParams&, int64_t, int64_t);

// The instantiation for (value type, coordinate type, chunk); both types are kFloat32 or kFloat16.
template <typename Params, template <int, typename, typename> class Pick>
auto select(DType value, DType coord, int vec) {
    const bool vh = value == DType::kFloat16, ch = coord == DType::kFloat16;
#define FGSA_ORT_BY_TYPES(V)                                                   \
    case V:                                                                    \
        return vh ? (ch ? Pick<V, Half, Half>::fn : Pick<V, Half, float>::fn)  \
                  : (ch ? Pick<V, float, Half>::fn : Pick<V, float, float>::fn);
    switch (vec) {
        FGSA_ORT_BY_TYPES(32)
        FGSA_ORT_BY_TYPES(16)
        FGSA_ORT_BY_TYPES(8)
        FGSA_ORT_BY_TYPES(4)
        FGSA_ORT_BY_TYPES(2)
        default:
        FGSA_ORT_BY_TYPES(1)
    }
#undef FGSA_ORT_BY_TYPES
}

template <int VEC, typename T, typename C>
struct PickMsda {
    static constexpr MsdaFn fn = msda_items_range<VEC, T, C>;
};
template <int VEC, typename T, typename C>
struct PickFgsa {
    static constexpr FgsaFn fn = fgsa_items_range<VEC, T, C>;
};

inline MsdaFn msda_function(const MsdaParams& p) {
    return select<MsdaParams, PickMsda>(p.value_type, p.coord_type, channel_chunk(p.head_dim));
}
inline FgsaFn fgsa_function(const FgsaParams& p) {
    return select<FgsaParams, PickFgsa>(p.value_type, p.coord_type, channel_chunk(p.head_dim));
}

}  // namespace fgsa::ort
