#include "fgsa/launch.h"
#include "fgsa/shapes.h"
#include "plugins.h"

namespace fgsa {
namespace plugin {

OpSpec const& FgsaAttentionPlugin::spec() {
    static OpSpec const kSpec{kFgsaAttentionPluginName,
                              {{{"value", 4, InputRole::kValue},
                                {"ref_points", 3, InputRole::kCoord},
                                {"links", 3, InputRole::kIndex},
                                {"offsets", 6, InputRole::kCoord},
                                {"logits", 4, InputRole::kCoord}}},
                              5,
                              /*queryInput=*/1};
    return kSpec;
}

Status FgsaAttentionPlugin::describe(ShapeSet const& dims, LevelShapes const& levels, FgsaParams* p) {
    return describe_fgsa(dims[0].data(), dims[1].data(), dims[2].data(), dims[3].data(), dims[4].data(), levels, p);
}

// value [B, Len_in, Hs*M, Dh] (0), ref_points [B, K, 2] (1), links [B, K, Hs] (2),
// offsets [B, K, Hs*M, L, P, 2] (3), logits [B, K, Hs*M, L*P] (4).
void FgsaAttentionPlugin::checkBuildDims(ShapeSet const& dims) const {
    int64_t const L = levels().num_levels;
    requireDim(dims, {0, 1}, levels().total, "Len_in = sum of H*W over spatial_shapes");
    requireDim(dims, {1, 2}, 2, "(x, y)");
    requireDim(dims, {3, 3}, L, "L = number of spatial_shapes levels");
    requireDim(dims, {3, 5}, 2, "(x, y)");
    if (dims[3][4] >= 0) requireDim(dims, {4, 3}, L * dims[3][4], "L*P, P = offsets dimension 4");
    requireEqual(dims, {{0, 0}, {1, 0}, {2, 0}, {3, 0}, {4, 0}}, "batch B");
    requireEqual(dims, {{1, 1}, {2, 1}, {3, 1}, {4, 1}}, "keypoints K");
    requireEqual(dims, {{0, 2}, {3, 2}, {4, 2}}, "heads Hs*M");
    if (dims[0][2] >= 0 && dims[2][2] > 0 && dims[0][2] % dims[2][2] != 0) {
        throw PluginError("value: expected dimension 2 = Hs*M, a multiple of Hs = links dimension 2 = " +
                          std::to_string(dims[2][2]) + ", got " + std::to_string(dims[0][2]));
    }
}

void FgsaAttentionPlugin::bind(nvinfer1::PluginTensorDesc const* inputDesc, void const* const* inputs,
                               FgsaParams* p) {
    p->value = inputs[0];
    p->ref_points = inputs[1];
    p->links = static_cast<int32_t const*>(inputs[2]);
    p->offsets = inputs[3];
    p->logits = inputs[4];
    p->value_type = toDType(inputDesc[0].type, "value");
    p->coord_type = toDType(inputDesc[1].type, "ref_points");
    if (inputDesc[2].type != nvinfer1::DataType::kINT32) throw PluginError("links: expected INT32");
    if (toDType(inputDesc[3].type, "offsets") != p->coord_type || toDType(inputDesc[4].type, "logits") != p->coord_type) {
        throw PluginError("offsets, logits: expected the data type of ref_points");
    }
}

cudaError_t FgsaAttentionPlugin::run(FgsaParams const& p, cudaStream_t stream) { return launch_fgsa_attention(p, stream); }

}  // namespace plugin
}  // namespace fgsa
