// Launcher of the MSDA kernels (Deformable-DETR signature); the launch itself is detail::launch_op.
#include "kernels.cuh"

namespace fgsa {

bool plan_msda_launch(const MsdaParams& p, LaunchConfig cfg, TeamPlan* plan) { return detail::plan_op_launch(p, cfg, plan); }

cudaError_t launch_msda(const MsdaParams& p, cudaStream_t stream, LaunchConfig cfg) {
    return detail::launch_op(p, stream, cfg);
}

}  // namespace fgsa
