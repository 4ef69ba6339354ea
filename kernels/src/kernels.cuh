// __global__ templates of both ops and the launch plumbing they share.
//
// One thread computes `vec` channels of one item for one group of sampling points (fgsa/team.h); the
// groups' partial sums meet through warp shuffles and group 0 writes, so every output element is written
// exactly once (no memset needed, no atomics).
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "fgsa/launch.h"
#include "fgsa/sampling.h"
#include "fgsa/shapes.h"
#include "fgsa/team.h"

namespace fgsa {
namespace detail {

constexpr int kBlockThreads = 256;  // a multiple of every team that uses shuffles (teams divide 32)

// Sums the partials of the `groups` threads that share channels: they are tph, 2*tph, ... lanes apart
// inside one power-of-two team, so an xor butterfly over those distances leaves the total in all of them.
// Every thread of the warp must call this (inactive ones with zeros).
template <int VEC>
__device__ __forceinline__ void reduce_groups(float (&acc)[VEC], const TeamPlan& plan) {
    for (int32_t offset = plan.tph; offset < plan.team; offset <<= 1) {
#pragma unroll
        for (int c = 0; c < VEC; ++c) acc[c] += __shfl_xor_sync(0xffffffffu, acc[c], offset);
    }
}

template <typename T, typename C, int VEC>
__global__ void __launch_bounds__(kBlockThreads) msda_kernel(MsdaParams p, TeamPlan plan, int64_t num_threads) {
    const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    const bool active = t < num_threads;
    const ThreadWork w = decompose_thread(active ? t : 0, plan);
    float acc[VEC];
#pragma unroll
    for (int c = 0; c < VEC; ++c) acc[c] = 0.f;
    if (active) msda_partial<VEC, T, C, float>(p, w.item, w.group, plan.groups, w.c0, acc);
    reduce_groups<VEC>(acc, plan);
    if (active && w.group == 0) store_vec<VEC>(static_cast<T*>(p.output) + msda_out_offset(p, w.item, w.c0), acc);
}

template <typename T, typename C, int VEC>
__global__ void __launch_bounds__(kBlockThreads) fgsa_kernel(FgsaParams p, TeamPlan plan, int64_t num_threads) {
    const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    const bool active = t < num_threads;
    const ThreadWork w = decompose_thread(active ? t : 0, plan);
    float acc[VEC];
#pragma unroll
    for (int c = 0; c < VEC; ++c) acc[c] = 0.f;
    if (active) fgsa_partial<VEC, T, C, float>(p, w.item, w.group, plan.groups, w.c0, acc);
    reduce_groups<VEC>(acc, plan);
    if (active && w.group == 0) store_vec<VEC>(static_cast<T*>(p.output) + fgsa_out_offset(p, w.item, w.c0), acc);
}

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
bool plan_launch(const Params& p, LaunchConfig cfg, TeamPlan* plan) {
    if (!check_params(p).ok) return false;
    if (p.value_type == DType::kFloat64 || p.coord_type == DType::kFloat64) return false;  // CPU reference only
    const int32_t widest = widest_vec(p);
    int32_t vec = cfg.vec == 0 ? widest : cfg.vec;
    if (vec != 1 && vec != widest) return false;
    return plan_team(p.head_dim, p.levels.num_levels * p.num_points, vec, cfg.groups, plan);
}

// Instantiates kernel<T, C, VEC> for the params' dtypes and the plan's vec, then launches it.
template <template <typename, typename, int> class Launch, typename Params>
cudaError_t dispatch(const Params& p, const TeamPlan& plan, int64_t num_items, cudaStream_t stream) {
    const int64_t num_threads = num_items * plan.team;
    const int64_t blocks = (num_threads + kBlockThreads - 1) / kBlockThreads;
    if (blocks > 2147483647LL) return cudaErrorInvalidConfiguration;
    const dim3 grid(static_cast<unsigned>(blocks)), block(kBlockThreads);
    const bool half_value = p.value_type == DType::kFloat16, half_coord = p.coord_type == DType::kFloat16;
    const bool wide = plan.vec != 1;
    if (!half_value && !half_coord) return wide ? Launch<float, float, 4>::run(grid, block, stream, p, plan, num_threads)
                                                : Launch<float, float, 1>::run(grid, block, stream, p, plan, num_threads);
    if (!half_value && half_coord) return wide ? Launch<float, __half, 4>::run(grid, block, stream, p, plan, num_threads)
                                               : Launch<float, __half, 1>::run(grid, block, stream, p, plan, num_threads);
    if (half_value && !half_coord) return wide ? Launch<__half, float, 8>::run(grid, block, stream, p, plan, num_threads)
                                               : Launch<__half, float, 1>::run(grid, block, stream, p, plan, num_threads);
    return wide ? Launch<__half, __half, 8>::run(grid, block, stream, p, plan, num_threads)
                : Launch<__half, __half, 1>::run(grid, block, stream, p, plan, num_threads);
}

}  // namespace detail
}  // namespace fgsa
