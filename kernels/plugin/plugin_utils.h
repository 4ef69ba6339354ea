// Small helpers the plugins share: logging through TensorRT's logger, attribute parsing, dtype and dims
// conversion. Nothing here throws across the library boundary; callers wrap every entry point in
// try/catch and turn exceptions into error codes.
#pragma once

#include <NvInferRuntime.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "fgsa/params.h"
#include "fgsa/shapes.h"

namespace fgsa {
namespace plugin {

// Set by setLoggerFinder() (TensorRT's loadLibrary path); when absent, messages go to stderr.
void setLoggerFinder(nvinfer1::ILoggerFinder* finder) noexcept;
void logMessage(nvinfer1::ILogger::Severity severity, std::string const& message) noexcept;

// An invalid input, attribute or shape found by a plugin method; caught in that method.
class PluginError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

inline void throwIfFailed(Status const& s) {
    if (!s.ok) throw PluginError(s.message);
}

// Reads the `spatial_shapes` attribute ((H, W) per level, INT32 or INT64) from a field collection.
// Unknown fields are reported as warnings and ignored.
LevelShapes parseSpatialShapes(nvinfer1::PluginFieldCollection const* fc, char const* pluginName);

// "[8, 8, 16, 16, 32, 32]"-style text of the levels, for metadata and messages.
std::string levelsToString(LevelShapes const& levels);

// FP32 -> kFloat32, FP16 -> kFloat16; throws for anything else.
DType toDType(nvinfer1::DataType type, char const* tensorName);

// Copies a concrete shape into out[0..rank); throws when the rank is not `rank` or a dim is unknown (< 0).
void concreteDims(nvinfer1::Dims const& dims, int32_t rank, char const* tensorName, int64_t* out);

}  // namespace plugin
}  // namespace fgsa
