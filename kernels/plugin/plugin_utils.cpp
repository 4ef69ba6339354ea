#include "plugin_utils.h"

#include <atomic>
#include <cstring>
#include <iostream>
#include <sstream>

#include "plugin_names.h"

namespace fgsa {
namespace plugin {

namespace {
std::atomic<nvinfer1::ILoggerFinder*> gLoggerFinder{nullptr};

char const* severityName(nvinfer1::ILogger::Severity severity) {
    switch (severity) {
        case nvinfer1::ILogger::Severity::kINTERNAL_ERROR: return "internal error";
        case nvinfer1::ILogger::Severity::kERROR: return "error";
        case nvinfer1::ILogger::Severity::kWARNING: return "warning";
        case nvinfer1::ILogger::Severity::kINFO: return "info";
        default: return "verbose";
    }
}
}  // namespace

void setLoggerFinder(nvinfer1::ILoggerFinder* finder) noexcept {
    nvinfer1::ILoggerFinder* expected = nullptr;
    gLoggerFinder.compare_exchange_strong(expected, finder);  // the first finder wins, as TensorRT expects
}

void logMessage(nvinfer1::ILogger::Severity severity, std::string const& message) noexcept {
    try {
        std::string const text = "[fgsa plugin] " + message;
        nvinfer1::ILoggerFinder* finder = gLoggerFinder.load();
        nvinfer1::ILogger* logger = finder ? finder->findLogger() : nullptr;
        if (logger) {
            logger->log(severity, text.c_str());
        } else if (severity <= nvinfer1::ILogger::Severity::kWARNING) {
            std::cerr << text << " (" << severityName(severity) << ")" << std::endl;
        }
    } catch (...) {
        // Logging must never be the reason an exception crosses the library boundary.
    }
}

LevelShapes parseSpatialShapes(nvinfer1::PluginFieldCollection const* fc, char const* pluginName) {
    if (fc == nullptr) throw PluginError("no plugin fields given; expected spatial_shapes");
    std::vector<int64_t> hw;
    bool found = false;
    for (int32_t i = 0; i < fc->nbFields; ++i) {
        nvinfer1::PluginField const& f = fc->fields[i];
        if (f.name == nullptr) continue;
        if (std::strcmp(f.name, kSpatialShapesField) != 0) {
            logMessage(nvinfer1::ILogger::Severity::kWARNING,
                       std::string(pluginName) + ": ignoring unknown attribute '" + f.name + "'");
            continue;
        }
        if (f.data == nullptr || f.length <= 0) throw PluginError("spatial_shapes is empty");
        hw.resize(static_cast<size_t>(f.length));
        if (f.type == nvinfer1::PluginFieldType::kINT32) {
            auto const* d = static_cast<int32_t const*>(f.data);
            for (int32_t j = 0; j < f.length; ++j) hw[j] = d[j];
        } else if (f.type == nvinfer1::PluginFieldType::kINT64) {
            auto const* d = static_cast<int64_t const*>(f.data);
            for (int32_t j = 0; j < f.length; ++j) hw[j] = d[j];
        } else {
            throw PluginError("spatial_shapes must be INT32 or INT64");
        }
        found = true;
    }
    if (!found) throw PluginError("missing attribute spatial_shapes ((H, W) per level)");
    if (hw.size() % 2 != 0) {
        throw PluginError("spatial_shapes must hold (H, W) pairs, got " + std::to_string(hw.size()) + " values");
    }
    LevelShapes levels{};
    throwIfFailed(make_levels(hw.data(), static_cast<int32_t>(hw.size() / 2), &levels));
    return levels;
}

std::string levelsToString(LevelShapes const& levels) {
    std::ostringstream os;
    os << "[";
    for (int32_t l = 0; l < levels.num_levels; ++l) {
        os << (l ? ", " : "") << levels.height[l] << ", " << levels.width[l];
    }
    os << "]";
    return os.str();
}

DType toDType(nvinfer1::DataType type, char const* tensorName) {
    if (type == nvinfer1::DataType::kFLOAT) return DType::kFloat32;
    if (type == nvinfer1::DataType::kHALF) return DType::kFloat16;
    throw PluginError(std::string(tensorName) + ": expected FP32 or FP16, got DataType " +
                      std::to_string(static_cast<int32_t>(type)));
}

void concreteDims(nvinfer1::Dims const& dims, int32_t rank, char const* tensorName, int64_t* out) {
    if (dims.nbDims != rank) {
        throw PluginError(std::string(tensorName) + ": expected rank " + std::to_string(rank) + ", got rank " +
                          std::to_string(dims.nbDims));
    }
    for (int32_t i = 0; i < rank; ++i) {
        if (dims.d[i] < 0) throw PluginError(std::string(tensorName) + ": dimension " + std::to_string(i) + " is unknown");
        out[i] = dims.d[i];
    }
}

}  // namespace plugin
}  // namespace fgsa
