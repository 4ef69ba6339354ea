// Launcher of the fused FGSAAttention kernel (all side heads of one FGSA module in one launch).
#include "kernels.cuh"

namespace fgsa {
namespace detail {

template <typename T, typename C, int VEC>
struct FgsaLaunch {
    static cudaError_t run(dim3 grid, dim3 block, cudaStream_t stream, const FgsaParams& p, const TeamPlan& plan,
                           int64_t num_threads) {
        fgsa_kernel<T, C, VEC><<<grid, block, 0, stream>>>(p, plan, num_threads);
        return cudaGetLastError();
    }
};

}  // namespace detail

bool plan_fgsa_launch(const FgsaParams& p, LaunchConfig cfg, TeamPlan* plan) { return detail::plan_launch(p, cfg, plan); }

cudaError_t launch_fgsa_attention(const FgsaParams& p, cudaStream_t stream, LaunchConfig cfg) {
    TeamPlan plan;
    if (!plan_fgsa_launch(p, cfg, &plan)) return cudaErrorInvalidValue;
    const int64_t items = fgsa_items(p);
    if (items == 0) return cudaSuccess;
    return detail::dispatch<detail::FgsaLaunch>(p, plan, items, stream);
}

}  // namespace fgsa
