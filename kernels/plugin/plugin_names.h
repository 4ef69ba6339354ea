// Names, version and namespace of the plugins. kernels/plugin/fgsa_plugins.json states the same values
// for the exporter; tests/kernels/test_plugin_spec.py checks that the two agree.
#pragma once

namespace fgsa {
namespace plugin {

constexpr char kMsdaPluginName[] = "FGSA_MSDA";
constexpr char kFgsaAttentionPluginName[] = "FGSA_Attention";
constexpr char kPluginVersion[] = "1";
constexpr char kPluginNamespace[] = "";

// Attribute (PluginField) names.
constexpr char kSpatialShapesField[] = "spatial_shapes";

}  // namespace plugin
}  // namespace fgsa
