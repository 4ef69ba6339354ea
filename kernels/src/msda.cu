// Launcher of the MSDA kernels (Deformable-DETR signature).
#include "kernels.cuh"

namespace fgsa {

bool plan_msda_launch(const MsdaParams& p, LaunchConfig cfg, TeamPlan* plan) {
    return detail::plan_launch(p, cfg, msda_items(p), plan);
}

cudaError_t launch_msda(const MsdaParams& p, cudaStream_t stream, LaunchConfig cfg) {
    TeamPlan plan;
    if (!plan_msda_launch(p, cfg, &plan)) return cudaErrorInvalidValue;
    const int64_t items = msda_items(p);
    if (items == 0) return cudaSuccess;  // empty batch or no queries: nothing to write
    return detail::dispatch(p, plan, items, stream);
}

}  // namespace fgsa
