// Host drivers of the three ONNX Runtime ops: items [begin, end) of one op, computed by the kernels'
// own sampling functions (fgsa/sampling.h). No ONNX Runtime types here; ort_ops.cpp validates the
// inputs, fills the params through fgsa/shapes.h and spreads item ranges over ONNX Runtime's threads.
//
// One call computes whole items: group 0 of 1 (every sampling point), and the head's channels in chunks
// of VEC. With VEC = head_dim (FMMP: 32) the location, softmax and bilinear weights of each point are
// computed once per item and the channel loop vectorises.
#pragma once

#include <cstdint>

#include "fgsa/op_traits.h"
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

// Items of op Params (fgsa/op_traits.h) at head-major positions [begin, end).
template <typename Params, int VEC, typename T, typename C>
void items_range(const Params& p, int64_t begin, int64_t end) {
    using Op = OpTraits<Params>;
    T* out = static_cast<T*>(p.output);
    const int64_t heads = Op::heads(p), queries = Op::queries(p);
    for (int64_t j = begin; j < end; ++j) {
        const int64_t item = head_major_item(j, heads, queries);
        for (int32_t c0 = 0; c0 < p.head_dim; c0 += VEC) {
            float acc[VEC] = {};
            Op::template partial<VEC, T, C, float>(p, item, 0, 1, c0, acc);
            T* dst = out + Op::out_offset(p, item, c0);
            for (int c = 0; c < VEC; ++c) store(dst + c, acc[c]);
        }
    }
}

// The widest channel chunk that divides head_dim.
inline int channel_chunk(int32_t head_dim) {
    for (int v : {32, 16, 8, 4, 2}) {
        if (head_dim % v == 0) return v;
    }
    return 1;
}

template <typename Params>
using RangeFn = void (*)(const Params&, int64_t, int64_t);

// The instantiation for the params' value type, coordinate type (both kFloat32 or kFloat16) and channel
// chunk.
template <typename Params>
RangeFn<Params> range_function(const Params& p) {
    const bool vh = p.value_type == DType::kFloat16, ch = p.coord_type == DType::kFloat16;
#define FGSA_ORT_BY_TYPES(V)                                                                        \
    case V:                                                                                         \
        return vh ? (ch ? items_range<Params, V, Half, Half> : items_range<Params, V, Half, float>) \
                  : (ch ? items_range<Params, V, float, Half> : items_range<Params, V, float, float>);
    switch (channel_chunk(p.head_dim)) {
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

}  // namespace fgsa::ort
