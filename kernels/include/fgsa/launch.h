// Launchers: the host entry points of the CUDA kernels. Every adapter (TensorRT plugin, torch extension)
// fills a params struct and calls one of these; they validate, pick the thread layout, launch on `stream`
// and return the CUDA status of the launch (cudaErrorInvalidValue for params they reject).
//
// Supported element types on the GPU: value/output FP32 or FP16, coordinates FP32 or FP16, independently.
#pragma once

#include <cuda_runtime_api.h>

#include "fgsa/params.h"
#include "fgsa/team.h"

namespace fgsa {

cudaError_t launch_msda(const MsdaParams& p, cudaStream_t stream, LaunchConfig cfg = {});
cudaError_t launch_fgsa_attention(const FgsaParams& p, cudaStream_t stream, LaunchConfig cfg = {});

// The thread layout a launch with these params and config would use; false where it would be rejected.
bool plan_msda_launch(const MsdaParams& p, LaunchConfig cfg, TeamPlan* plan);
bool plan_fgsa_launch(const FgsaParams& p, LaunchConfig cfg, TeamPlan* plan);

}  // namespace fgsa
