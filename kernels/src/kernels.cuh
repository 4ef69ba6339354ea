// __global__ templates of both thread layouts, one per layout for both ops (OpTraits<Params>,
// fgsa/op_traits.h, names what differs), and the launch plumbing they share.
//
// Team layout (team_kernel): one thread computes `vec` channels of one item for one group of sampling
// points (fgsa/team.h, fgsa/sampling.h). Item layout (item_kernel): the same split, but each sample's
// location and weight is staged once per item and shared by shuffles (fgsa/item_layout.h). In both, the
// groups' partial sums meet through warp shuffles and group 0 writes, so every output element is written
// exactly once (no memset needed, no atomics).
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "fgsa/item_layout.h"
#include "fgsa/launch.h"
#include "fgsa/op_traits.h"
#include "fgsa/sampling.h"
#include "fgsa/shapes.h"
#include "fgsa/team.h"

namespace fgsa {
namespace detail {

constexpr unsigned kFullMask = 0xffffffffu;

// Sums the partials of the `groups` threads that share channels: they are tph, 2*tph, ... lanes apart
// inside one power-of-two team, so an xor butterfly over those distances leaves the total in all of them.
// Every thread of the warp must call this (inactive ones with zeros).
template <int VEC>
__device__ __forceinline__ void reduce_groups(float (&acc)[VEC], const TeamPlan& plan) {
    for (int32_t offset = plan.tph; offset < plan.team; offset <<= 1) {
#pragma unroll
        for (int c = 0; c < VEC; ++c) acc[c] += __shfl_xor_sync(kFullMask, acc[c], offset);
    }
}

// One thread's share of one item of op Params (OpTraits<Params>: fgsa/op_traits.h).
template <typename Params, typename T, typename C, int VEC>
__global__ void __launch_bounds__(kBlockThreads) team_kernel(Params p, TeamPlan plan, int64_t num_threads) {
    using Op = OpTraits<Params>;
    const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    const bool active = t < num_threads;
    const ThreadWork w = decompose_thread(active ? t : 0, plan);
    float acc[VEC];
#pragma unroll
    for (int c = 0; c < VEC; ++c) acc[c] = 0.f;
    if (active) Op::template partial<VEC, T, C, float>(p, w.item, w.group, plan.groups, w.c0, acc);
    reduce_groups<VEC>(acc, plan);
    if (active && w.group == 0) store_vec<VEC>(static_cast<T*>(p.output) + Op::out_offset(p, w.item, w.c0), acc);
}

// ---- item layout -------------------------------------------------------------------------------------------

// Where a thread of the item layout sits: team and channel row are powers of two (plan_item_team).
template <typename I>
struct ItemLane {
    I item;
    int32_t lane, group, c0;
    __device__ __forceinline__ ItemLane(I t, const TeamPlan& plan) {
        item = t / plan.team;
        lane = static_cast<int32_t>(t & (plan.team - 1));
        group = lane / plan.tph;
        c0 = (lane & (plan.tph - 1)) * plan.vec;
    }
};

// Step 3's exchange: sample s as lane `src` of this team staged it.
struct ShuffleExchange {
    int32_t team;
    __device__ __forceinline__ Staged<float> operator()(const Staged<float>& own, int32_t src, int32_t) const {
        return {__shfl_sync(kFullMask, own.x, src, team), __shfl_sync(kFullMask, own.y, src, team),
                __shfl_sync(kFullMask, own.w, src, team)};
    }
};

template <typename Params, typename T, typename C, int VEC, int L_, int P_, typename I>
__global__ void __launch_bounds__(kBlockThreads) item_kernel(Params p, TeamPlan plan, I num_threads) {
    using Op = OpTraits<Params>;
    const I t = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x;
    const bool active = t < num_threads;
    const ItemLane<I> w(active ? t : 0, plan);
    // Step 1 (FGSA_Attention): softmax statistics, once per item, combined over the team.
    SoftmaxStats<float> sm{0.f, 0.f};
    if constexpr (Op::kSoftmax) {
        sm = Op::template softmax_lane<L_, P_, I, C, float>(p, w.item, w.lane, plan.team);
        for (int32_t offset = 1; offset < plan.team; offset <<= 1) {
            const SoftmaxStats<float> other{__shfl_xor_sync(kFullMask, sm.m, offset),
                                            __shfl_xor_sync(kFullMask, sm.d, offset)};
            sm = softmax_combine(sm, other);
        }
    }
    float acc[VEC];
#pragma unroll
    for (int c = 0; c < VEC; ++c) acc[c] = 0.f;
    const auto stage = Op::template stager<L_, P_, I, C, float>(p, w.item, active, sm);
    item_lane_accumulate<VEC, L_, P_, I>(p, plan, w.lane, w.group, stage.valid,
                                         Op::template item_value<I, T>(p, w.item, w.c0), stage,
                                         ShuffleExchange{plan.team}, acc);
    reduce_groups<VEC>(acc, plan);
    if (active && w.group == 0) {
        store_vec<VEC>(static_cast<T*>(p.output) + Op::template item_out_offset<I>(p, w.item, w.c0), acc);
    }
}

// ---- launch plumbing ---------------------------------------------------------------------------------------

inline int32_t element_size(DType t) { return t == DType::kFloat16 ? 2 : (t == DType::kFloat64 ? 8 : 4); }

inline bool aligned16(const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 15u) == 0; }

// The 16-byte vector width is usable when every vector a thread touches starts 16-byte aligned.
template <typename Params>
int32_t widest_vec(const Params& p) {
    const int32_t vec = 16 / element_size(p.value_type);
    const bool ok = aligned16(p.value) && aligned16(p.output) && p.head_dim % vec == 0 &&
                    p.value_stride_batch % vec == 0 && p.value_stride_pos % vec == 0 &&
                    p.value_stride_head % vec == 0 && p.out_stride_batch % vec == 0 && p.out_stride_query % vec == 0;
    return ok ? vec : 1;
}

template <typename Params>
bool plan_launch(const Params& p, LaunchConfig cfg, int64_t items, TeamPlan* plan) {
    if (!check_params(p).ok) return false;
    if (p.value_type == DType::kFloat64 || p.coord_type == DType::kFloat64) return false;  // CPU reference only
    const int32_t widest = widest_vec(p);
    const int32_t vec = cfg.vec == 0 ? widest : cfg.vec;
    if (vec != 1 && vec != widest) return false;
    if (cfg.layout == Layout::kItem) return plan_item_layout(p, vec, cfg.groups, cfg.index_bits, items, plan);
    if (cfg.index_bits != 0 && cfg.index_bits != 64) return false;  // the team layout indexes with 64 bits
    return plan_team(p.head_dim, p.levels.num_levels * p.num_points, vec, cfg.groups, plan);
}

// Launches `kernel` and returns the status of this launch only. cudaLaunchKernel reports its own launch
// (invalid configuration, no kernel image for the device...) and leaves alone an error that an earlier,
// unrelated call left in the thread's last-error slot, which cudaGetLastError() would report (and clear)
// as if this launch had failed.
template <typename Params, typename N>
cudaError_t launch_kernel(void (*kernel)(Params, TeamPlan, N), int64_t num_threads, cudaStream_t stream,
                          const Params& p, const TeamPlan& plan) {
    const int64_t blocks = (num_threads + kBlockThreads - 1) / kBlockThreads;
    if (blocks > 2147483647LL) return cudaErrorInvalidConfiguration;
    Params params = p;
    TeamPlan team_plan = plan;
    N n = static_cast<N>(num_threads);
    void* args[] = {&params, &team_plan, &n};
    return cudaLaunchKernel(reinterpret_cast<const void*>(kernel), dim3(static_cast<unsigned>(blocks)),
                            dim3(kBlockThreads), args, 0, stream);
}

template <typename T, typename C, int VEC, typename Params>
cudaError_t launch_typed(const Params& p, const TeamPlan& plan, int64_t num_threads, cudaStream_t stream) {
    if (plan.layout != Layout::kItem) return launch_kernel(&team_kernel<Params, T, C, VEC>, num_threads, stream, p, plan);
    if (plan.index_bits == 32) {
        return item_uses_fixed_sizes(p, plan)
                   ? launch_kernel(&item_kernel<Params, T, C, VEC, kFixedLevels, kFixedPoints, int32_t>, num_threads,
                                   stream, p, plan)
                   : launch_kernel(&item_kernel<Params, T, C, VEC, 0, 0, int32_t>, num_threads, stream, p, plan);
    }
    return launch_kernel(&item_kernel<Params, T, C, VEC, 0, 0, int64_t>, num_threads, stream, p, plan);
}

// Instantiates the kernels for the params' dtypes and the plan's vec and layout, then launches one.
template <typename Params>
cudaError_t dispatch(const Params& p, const TeamPlan& plan, int64_t num_items, cudaStream_t stream) {
    const int64_t num_threads = num_items * plan.team;
    const bool half_value = p.value_type == DType::kFloat16, half_coord = p.coord_type == DType::kFloat16;
    const bool wide = plan.vec != 1;
    if (!half_value && !half_coord) return wide ? launch_typed<float, float, 4>(p, plan, num_threads, stream)
                                                : launch_typed<float, float, 1>(p, plan, num_threads, stream);
    if (!half_value && half_coord) return wide ? launch_typed<float, __half, 4>(p, plan, num_threads, stream)
                                               : launch_typed<float, __half, 1>(p, plan, num_threads, stream);
    if (half_value && !half_coord) return wide ? launch_typed<__half, float, 8>(p, plan, num_threads, stream)
                                               : launch_typed<__half, float, 1>(p, plan, num_threads, stream);
    return wide ? launch_typed<__half, __half, 8>(p, plan, num_threads, stream)
                : launch_typed<__half, __half, 1>(p, plan, num_threads, stream);
}

// The launcher of op Params (launch_msda, launch_fgsa_attention and their plan_* are this, by name).
template <typename Params>
bool plan_op_launch(const Params& p, LaunchConfig cfg, TeamPlan* plan) {
    return plan_launch(p, cfg, OpTraits<Params>::items(p), plan);
}

template <typename Params>
cudaError_t launch_op(const Params& p, cudaStream_t stream, LaunchConfig cfg) {
    TeamPlan plan;
    if (!plan_op_launch(p, cfg, &plan)) return cudaErrorInvalidValue;
    const int64_t items = OpTraits<Params>::items(p);
    if (items == 0) return cudaSuccess;  // empty batch or no queries: nothing to write
    return dispatch(p, plan, items, stream);
}

}  // namespace detail
}  // namespace fgsa
