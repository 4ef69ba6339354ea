// Launcher of the MSDA kernel (Deformable-DETR signature).
#include "kernels.cuh"

namespace fgsa {
namespace detail {

template <typename T, typename C, int VEC>
struct MsdaLaunch {
    static cudaError_t run(dim3 grid, dim3 block, cudaStream_t stream, const MsdaParams& p, const TeamPlan& plan,
                           int64_t num_threads) {
        msda_kernel<T, C, VEC><<<grid, block, 0, stream>>>(p, plan, num_threads);
        return cudaGetLastError();
    }
};

}  // namespace detail

bool plan_msda_launch(const MsdaParams& p, LaunchConfig cfg, TeamPlan* plan) { return detail::plan_launch(p, cfg, plan); }

cudaError_t launch_msda(const MsdaParams& p, cudaStream_t stream, LaunchConfig cfg) {
    TeamPlan plan;
    if (!plan_msda_launch(p, cfg, &plan)) return cudaErrorInvalidValue;
    const int64_t items = msda_items(p);
    if (items == 0) return cudaSuccess;  // empty batch or no queries: nothing to write
    return detail::dispatch<detail::MsdaLaunch>(p, plan, items, stream);
}

}  // namespace fgsa
