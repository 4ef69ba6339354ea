// Launcher of the fused FGSAAttention kernels (all side heads of one FGSA module in one launch); the
// launch itself is detail::launch_op.
#include "kernels.cuh"

namespace fgsa {

bool plan_fgsa_launch(const FgsaParams& p, LaunchConfig cfg, TeamPlan* plan) { return detail::plan_op_launch(p, cfg, plan); }

cudaError_t launch_fgsa_attention(const FgsaParams& p, cudaStream_t stream, LaunchConfig cfg) {
    return detail::launch_op(p, stream, cfg);
}

}  // namespace fgsa
