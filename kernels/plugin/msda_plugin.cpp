#include "fgsa/launch.h"
#include "fgsa/shapes.h"
#include "plugins.h"

namespace fgsa {
namespace plugin {

OpSpec const& MsdaPlugin::spec() {
    static OpSpec const kSpec{kMsdaPluginName,
                              {{{"value", 4, InputRole::kValue},
                                {"sampling_locations", 6, InputRole::kCoord},
                                {"attention_weights", 5, InputRole::kCoord}}},
                              3,
                              /*queryInput=*/1};
    return kSpec;
}

Status MsdaPlugin::describe(ShapeSet const& dims, LevelShapes const& levels, MsdaParams* p) {
    return describe_msda(dims[0].data(), dims[1].data(), dims[2].data(), levels, p);
}

// value [B, Len_in, M, Dh] (0), sampling_locations [B, Q, M, L, P, 2] (1), attention_weights [B, Q, M, L, P] (2).
void MsdaPlugin::checkBuildDims(ShapeSet const& dims) const {
    int64_t const L = levels().num_levels;
    requireDim(dims, {0, 1}, levels().total, "Len_in = sum of H*W over spatial_shapes");
    requireDim(dims, {1, 3}, L, "L = number of spatial_shapes levels");
    requireDim(dims, {1, 5}, 2, "(x, y)");
    requireDim(dims, {2, 3}, L, "L = number of spatial_shapes levels");
    requireEqual(dims, {{0, 0}, {1, 0}, {2, 0}}, "batch B");
    requireEqual(dims, {{0, 2}, {1, 2}, {2, 2}}, "heads M");
    requireEqual(dims, {{1, 1}, {2, 1}}, "queries Q");
    requireEqual(dims, {{1, 4}, {2, 4}}, "points P");
}

void MsdaPlugin::bind(nvinfer1::PluginTensorDesc const* inputDesc, void const* const* inputs, MsdaParams* p) {
    p->value = inputs[0];
    p->sampling_locations = inputs[1];
    p->attention_weights = inputs[2];
    p->value_type = toDType(inputDesc[0].type, "value");
    p->coord_type = toDType(inputDesc[1].type, "sampling_locations");
    if (toDType(inputDesc[2].type, "attention_weights") != p->coord_type) {
        throw PluginError("attention_weights: expected the data type of sampling_locations");
    }
}

cudaError_t MsdaPlugin::run(MsdaParams const& p, cudaStream_t stream) { return launch_msda(p, stream); }

}  // namespace plugin
}  // namespace fgsa
