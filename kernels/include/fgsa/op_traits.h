// OpTraits<Params>: what differs between the two ops, named once, so that one kernel template per thread
// layout (src/kernels.cuh), one launcher, the CPU reference and the ONNX Runtime drivers serve both.
//
// An op is a set of items (fgsa/team.h); per item it has `heads` x `queries` structure (for the ONNX
// Runtime's head-major order), a team-layout partial sum and output offset (fgsa/sampling.h), and for
// the item layout (fgsa/item_layout.h) a value pointer, an output offset and a stager: the per-item state
// that stages sample s (pixel coordinates and final weight). FGSA_Attention's stager needs the softmax
// statistics of the item's logits, which the team combines first (kSoftmax); MSDA's weights come
// normalised. Everything here forwards to the ops' functions; there is no math in this header.
#pragma once

#include <cstdint>

#include "fgsa/item_layout.h"
#include "fgsa/params.h"
#include "fgsa/sampling.h"

namespace fgsa {

template <typename Params>
struct OpTraits;

template <>
struct OpTraits<MsdaParams> {
    static constexpr bool kSoftmax = false;

    FGSA_HD static int64_t items(const MsdaParams& p) { return msda_items(p); }
    FGSA_HD static int64_t heads(const MsdaParams& p) { return p.num_heads; }
    FGSA_HD static int64_t queries(const MsdaParams& p) { return p.num_queries; }

    template <int VEC, typename T, typename C, typename A>
    FGSA_HD static void partial(const MsdaParams& p, int64_t item, int32_t group, int32_t groups, int32_t c0,
                                A (&acc)[VEC]) {
        msda_partial<VEC, T, C, A>(p, item, group, groups, c0, acc);
    }
    FGSA_HD static int64_t out_offset(const MsdaParams& p, int64_t item, int32_t c0) {
        return msda_out_offset(p, item, c0);
    }

    template <typename I, typename T>
    FGSA_HD static const T* item_value(const MsdaParams& p, I item, int32_t c0) {
        return msda_item_value<I, T>(p, item, c0);
    }
    template <typename I>
    FGSA_HD static I item_out_offset(const MsdaParams& p, I item, int32_t c0) {
        return msda_item_out_offset<I>(p, item, c0);
    }

    template <int L_, int P_, typename I, typename C, typename A>
    struct Stager {
        const MsdaParams& p;
        I item;
        bool valid;
        FGSA_HD Staged<A> operator()(int32_t s) const { return msda_item_stage<L_, P_, I, C, A>(p, item, s); }
    };
    // `active`: the thread has an item (threads past the last item stage nothing).
    template <int L_, int P_, typename I, typename C, typename A>
    FGSA_HD static Stager<L_, P_, I, C, A> stager(const MsdaParams& p, I item, bool active, SoftmaxStats<A>) {
        return {p, item, active};
    }
};

template <>
struct OpTraits<FgsaParams> {
    static constexpr bool kSoftmax = true;

    FGSA_HD static int64_t items(const FgsaParams& p) { return fgsa_items(p); }
    FGSA_HD static int64_t heads(const FgsaParams& p) { return static_cast<int64_t>(p.num_side_heads) * p.heads_per_side; }
    FGSA_HD static int64_t queries(const FgsaParams& p) { return p.num_keypoints; }

    template <int VEC, typename T, typename C, typename A>
    FGSA_HD static void partial(const FgsaParams& p, int64_t item, int32_t group, int32_t groups, int32_t c0,
                                A (&acc)[VEC]) {
        fgsa_partial<VEC, T, C, A>(p, item, group, groups, c0, acc);
    }
    FGSA_HD static int64_t out_offset(const FgsaParams& p, int64_t item, int32_t c0) {
        return fgsa_out_offset(p, item, c0);
    }

    template <typename I, typename T>
    FGSA_HD static const T* item_value(const FgsaParams& p, I item, int32_t c0) {
        return fgsa_item_value<I, T>(p, item, c0);
    }
    template <typename I>
    FGSA_HD static I item_out_offset(const FgsaParams& p, I item, int32_t c0) {
        return fgsa_item_out_offset<I>(p, item, c0);
    }

    // Step 1 of one lane: its share of the item's softmax statistics (the team combines them).
    template <int L_, int P_, typename I, typename C, typename A>
    FGSA_HD static SoftmaxStats<A> softmax_lane(const FgsaParams& p, I item, int32_t lane, int32_t team) {
        return fgsa_item_softmax_lane<L_, P_, I, C, A>(p, item, lane, team);
    }

    template <int L_, int P_, typename I, typename C, typename A>
    struct Stager {
        const FgsaParams& p;
        I item;
        bool valid;  // false: the link is outside [0, K) (zero output) or the thread has no item
        A ref_x, ref_y;
        SoftmaxStats<A> sm;
        A inv_denom;
        FGSA_HD Staged<A> operator()(int32_t s) const {
            return fgsa_item_stage<L_, P_, I, C, A>(p, item, s, ref_x, ref_y, sm, inv_denom);
        }
    };
    // `sm`: the team's combined softmax statistics of this item.
    template <int L_, int P_, typename I, typename C, typename A>
    FGSA_HD static Stager<L_, P_, I, C, A> stager(const FgsaParams& p, I item, bool active, SoftmaxStats<A> sm) {
        Stager<L_, P_, I, C, A> st{p, item, false, A(0), A(0), sm, static_cast<A>(1) / sm.d};
        st.valid = active && fgsa_item_ref<I, C>(p, item, &st.ref_x, &st.ref_y);
        return st;
    }
};

}  // namespace fgsa
