// Launcher of the fused FGSAAttention kernels (all side heads of one FGSA module in one launch).
#include "kernels.cuh"

namespace fgsa {

bool plan_fgsa_launch(const FgsaParams& p, LaunchConfig cfg, TeamPlan* plan) {
    return detail::plan_launch(p, cfg, fgsa_items(p), plan);
}

cudaError_t launch_fgsa_attention(const FgsaParams& p, cudaStream_t stream, LaunchConfig cfg) {
    TeamPlan plan;
    if (!plan_fgsa_launch(p, cfg, &plan)) return cudaErrorInvalidValue;
    const int64_t items = fgsa_items(p);
    if (items == 0) return cudaSuccess;
    return detail::dispatch(p, plan, items, stream);
}

}  // namespace fgsa
