// The two plugin classes. Their shared behaviour is in plugin_base.h; each adds its input table, its shape
// check and its launch. Creators are FgsaPluginCreator<MsdaPlugin> and FgsaPluginCreator<FgsaAttentionPlugin>.
#pragma once

#include "plugin_base.h"

namespace fgsa {
namespace plugin {

// FGSA_MSDA: inputs value [B, Len_in, M, Dh], sampling_locations [B, Q, M, L, P, 2],
// attention_weights [B, Q, M, L, P]; output [B, Q, M*Dh].
class MsdaPlugin final : public FgsaPluginBase {
public:
    explicit MsdaPlugin(LevelShapes const& levels);
    static OpSpec const& spec();
    nvinfer1::IPluginV3* clone() noexcept override;

protected:
    void checkShapes(ShapeSet const& dims) const override;
    void checkBuildDims(ShapeSet const& dims) const override;
    cudaError_t launch(ShapeSet const& dims, nvinfer1::PluginTensorDesc const* inputDesc, void const* const* inputs,
                       void* output, cudaStream_t stream) const override;
};

// FGSA_Attention: inputs value [B, Len_in, Hs*M, Dh], ref_points [B, K, 2], links [B, K, Hs] (INT32),
// offsets [B, K, Hs*M, L, P, 2], logits [B, K, Hs*M, L*P]; output [B, K, Hs*M*Dh].
class FgsaAttentionPlugin final : public FgsaPluginBase {
public:
    explicit FgsaAttentionPlugin(LevelShapes const& levels);
    static OpSpec const& spec();
    nvinfer1::IPluginV3* clone() noexcept override;

protected:
    void checkShapes(ShapeSet const& dims) const override;
    void checkBuildDims(ShapeSet const& dims) const override;
    cudaError_t launch(ShapeSet const& dims, nvinfer1::PluginTensorDesc const* inputDesc, void const* const* inputs,
                       void* output, cudaStream_t stream) const override;
};

using MsdaPluginCreator = FgsaPluginCreator<MsdaPlugin>;
using FgsaAttentionPluginCreator = FgsaPluginCreator<FgsaAttentionPlugin>;

}  // namespace plugin
}  // namespace fgsa
