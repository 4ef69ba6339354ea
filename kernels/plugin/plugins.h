// The two plugin classes. Their shared behaviour is in plugin_base.h (FgsaPluginBase, OpPlugin); each adds
// its input table, how its params are described and bound, its launcher and its build-time dims check.
// Creators are FgsaPluginCreator<MsdaPlugin> and FgsaPluginCreator<FgsaAttentionPlugin>.
#pragma once

#include "plugin_base.h"

namespace fgsa {
namespace plugin {

// FGSA_MSDA: inputs value [B, Len_in, M, Dh], sampling_locations [B, Q, M, L, P, 2],
// attention_weights [B, Q, M, L, P]; output [B, Q, M*Dh].
class MsdaPlugin final : public OpPlugin<MsdaPlugin, MsdaParams> {
public:
    using OpPlugin::OpPlugin;
    static OpSpec const& spec();
    static Status describe(ShapeSet const& dims, LevelShapes const& levels, MsdaParams* p);
    static void bind(nvinfer1::PluginTensorDesc const* inputDesc, void const* const* inputs, MsdaParams* p);
    static cudaError_t run(MsdaParams const& p, cudaStream_t stream);

protected:
    void checkBuildDims(ShapeSet const& dims) const override;
};

// FGSA_Attention: inputs value [B, Len_in, Hs*M, Dh], ref_points [B, K, 2], links [B, K, Hs] (INT32),
// offsets [B, K, Hs*M, L, P, 2], logits [B, K, Hs*M, L*P]; output [B, K, Hs*M*Dh].
class FgsaAttentionPlugin final : public OpPlugin<FgsaAttentionPlugin, FgsaParams> {
public:
    using OpPlugin::OpPlugin;
    static OpSpec const& spec();
    static Status describe(ShapeSet const& dims, LevelShapes const& levels, FgsaParams* p);
    static void bind(nvinfer1::PluginTensorDesc const* inputDesc, void const* const* inputs, FgsaParams* p);
    static cudaError_t run(FgsaParams const& p, cudaStream_t stream);

protected:
    void checkBuildDims(ShapeSet const& dims) const override;
};

using MsdaPluginCreator = FgsaPluginCreator<MsdaPlugin>;
using FgsaAttentionPluginCreator = FgsaPluginCreator<FgsaAttentionPlugin>;

}  // namespace plugin
}  // namespace fgsa
