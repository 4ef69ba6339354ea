// How threads share the work of one output item (batch b, query q, head h), on the GPU and in the CPU
// reference alike.
//
// An item owns Dh output channels and L*P sampling points. A *team* of `team` threads handles it:
//   - `tph` = Dh / vec threads cover the channels, `vec` contiguous channels each (16-byte loads);
//   - `groups` copies of that row split the L*P sampling points round-robin (sample s goes to group
//     s % groups), so batch 1 still has enough threads in flight;
//   - the groups' partial sums are added with warp shuffles, which is why a team with groups > 1 must be a
//     power of two no larger than a warp (teams then never straddle a warp).
// Thread t works on item t / team, group (t % team) / tph, channels vec * (t % tph) ...
#pragma once

#include <cstdint>

#include "fgsa/numeric.h"
#include "fgsa/params.h"

namespace fgsa {

constexpr int kWarpSize = 32;
constexpr int kMaxGroups = 8;

// Threads per block of both layouts' kernels: a multiple of every team that uses shuffles (teams divide
// 32), and a power of two, so that the last block's padding threads never leave 32-bit thread indices: 2^31
// is a multiple of it, so a thread count up to 2^31 - 1 rounds up to at most 2^31 grid threads, whose
// largest index is 2^31 - 1 (item_threads_fit_int32 checks the rounded-up count all the same).
constexpr int kBlockThreads = 256;
static_assert(kBlockThreads % kWarpSize == 0 && (kBlockThreads & (kBlockThreads - 1)) == 0,
              "kBlockThreads must be a power of two holding whole warps");

struct TeamPlan {
    int32_t vec;
    int32_t tph;     // threads per channel row = head_dim / vec
    int32_t groups;  // sampling-point groups
    int32_t team;    // tph * groups
    Layout layout = Layout::kTeam;
    int32_t index_bits = 64;  // kItem: width of the element offsets (32 or 64)
};

// The item layout picks the fewest groups that still give the GPU this many threads: fewer groups mean
// fewer lanes per item, so less shared per-item work and shorter shuffle trees. 2^17 is about half of
// what an H100 keeps resident (132 SMs x 2048); gpu_check measures whether that is enough.
constexpr int64_t kItemTargetThreads = int64_t(1) << 17;

struct ThreadWork {
    int64_t item;  // flattened (b, q, h)
    int32_t group;
    int32_t c0;  // first channel
};

FGSA_HD bool is_pow2(int32_t x) { return x > 0 && (x & (x - 1)) == 0; }

FGSA_HD int32_t pow2_floor(int32_t x) {
    int32_t p = 1;
    while (p * 2 <= x) p *= 2;
    return p;
}

// Both layouts end alike: the plan from the chosen vector width, row threads and groups (64-bit offsets;
// plan_item_layout narrows them to 32 bits where every tensor fits).
inline bool fill_plan(int32_t vec, int32_t tph, int32_t groups, Layout layout, TeamPlan* plan) {
    plan->vec = vec;
    plan->tph = tph;
    plan->groups = groups;
    plan->team = tph * groups;
    plan->layout = layout;
    plan->index_bits = 64;
    return true;
}

// Picks vec and groups. `vec` must already be a width the data allows (alignment is the launcher's job).
// Returns false (and leaves plan untouched) when a requested configuration cannot work.
inline bool plan_team(int32_t head_dim, int32_t samples, int32_t vec, int32_t requested_groups, TeamPlan* plan) {
    if (vec <= 0 || head_dim <= 0 || samples <= 0 || head_dim % vec != 0) return false;
    const int32_t tph = head_dim / vec;
    const bool shuffles_fit = is_pow2(tph) && tph <= kWarpSize;
    int32_t groups = requested_groups;
    if (groups == 0) {
        groups = 1;
        if (shuffles_fit) {
            groups = kWarpSize / tph;
            if (groups > kMaxGroups) groups = kMaxGroups;
            const int32_t cap = pow2_floor(samples);  // no group without a sample
            if (groups > cap) groups = cap;
        }
    }
    if (groups != 1 && !(shuffles_fit && is_pow2(groups) && tph * groups <= kWarpSize)) return false;
    return fill_plan(vec, tph, groups, Layout::kTeam, plan);
}

// Item layout: the channel row (tph = head_dim / vec) and the team must be powers of two within a warp,
// because a sample's location and weight travel between the team's lanes by shuffle. Groups: the fewest
// (power of two) that reach kItemTargetThreads for `items` items, at most kMaxGroups and at most the
// number of samples; `requested_groups` > 0 forces a count.
inline bool plan_item_team(int32_t head_dim, int32_t samples, int32_t vec, int32_t requested_groups, int64_t items,
                           TeamPlan* plan) {
    if (vec <= 0 || head_dim <= 0 || samples <= 0 || head_dim % vec != 0) return false;
    const int32_t tph = head_dim / vec;
    if (!is_pow2(tph) || tph > kWarpSize) return false;
    int32_t groups = requested_groups;
    if (groups == 0) {
        int32_t cap = kWarpSize / tph;
        if (cap > kMaxGroups) cap = kMaxGroups;
        if (cap > pow2_floor(samples)) cap = pow2_floor(samples);
        groups = 1;
        while (groups < cap && items * tph * groups < kItemTargetThreads) groups *= 2;
    }
    if (!is_pow2(groups) || tph * groups > kWarpSize) return false;
    return fill_plan(vec, tph, groups, Layout::kItem, plan);
}

FGSA_HD ThreadWork decompose_thread(int64_t thread, const TeamPlan& plan) {
    ThreadWork w;
    w.item = thread / plan.team;
    const int32_t lane = static_cast<int32_t>(thread % plan.team);
    w.group = lane / plan.tph;
    w.c0 = (lane % plan.tph) * plan.vec;
    return w;
}

}  // namespace fgsa
