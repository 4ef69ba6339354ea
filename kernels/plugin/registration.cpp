// How TensorRT finds the creators of this library.
//
// The default build (libfgsa_trt_plugin.so) has no load-time side effect and no link-time dependency on
// libnvinfer: TensorRT's own loaders (`IPluginRegistry::loadLibrary`, `tensorrt.get_plugin_registry()
// .load_library`, `trtexec --dynamicPlugins`, plugin libraries serialized into version-compatible plans
// and loaded by lean runtimes) look up the exported `setLoggerFinder` and `getCreators` and register
// every creator `getCreators` returns. Loading the library twice, or from two paths, registers nothing by
// itself, so it cannot collide with an earlier registration; and a lean runtime, which has no libnvinfer,
// can load it.
//
// Opt-in (`-DFGSA_PLUGIN_REGISTER_AT_LOAD=ON`, target fgsa_trt_plugin_linked): for loaders that only
// dlopen (`trtexec --staticPlugins`, `ctypes.CDLL` after `import tensorrt`), this file is compiled a
// second time with FGSA_REGISTER_AT_LOAD=1 and linked with libnvinfer: a static object registers both
// creators with getPluginRegistry() when the library loads, and getCreators then hands out only those
// that the load-time registration did not place, so using both paths on that library registers nothing
// twice. Never both by default.
//
// `getPluginCreators` (the deprecated entry point for IPluginCreator v1) is deliberately not exported:
// our creators are IPluginCreatorV3One and must not be handed out as the v1 interface.
#include <NvInferRuntime.h>

#include <array>

#include "plugin_names.h"
#include "plugin_utils.h"
#include "plugins.h"

#ifndef FGSA_REGISTER_AT_LOAD
#define FGSA_REGISTER_AT_LOAD 0
#endif

// TensorRT's TENSORRTAPI only exports when TensorRT itself is built, so the entry points say it themselves.
#define FGSA_PLUGIN_EXPORT extern "C" __attribute__((visibility("default")))

namespace fgsa {
namespace plugin {
namespace {

constexpr int32_t kNbCreators = 2;

struct Creators {
    MsdaPluginCreator msda;
    FgsaAttentionPluginCreator attention;
    std::array<nvinfer1::IPluginCreatorInterface*, kNbCreators> all{&msda, &attention};
    // Set by the opt-in load-time registration; those creators are already in the registry.
    std::array<bool, kNbCreators> registeredAtLoad{false, false};
    // What getCreators hands out (all creators, unless the load-time registration placed some).
    std::array<nvinfer1::IPluginCreatorInterface*, kNbCreators> handedOut{};
};

Creators& creators() {
    static Creators instance;
    return instance;
}

#if FGSA_REGISTER_AT_LOAD
struct LoadTimeRegistration {
    LoadTimeRegistration() noexcept {
        try {
            nvinfer1::IPluginRegistry* registry = getPluginRegistry();
            if (registry == nullptr) return;
            Creators& c = creators();
            for (int32_t i = 0; i < kNbCreators; ++i) {
                c.registeredAtLoad[i] = registry->registerCreator(*c.all[i], kPluginNamespace);
            }
        } catch (...) {
            logMessage(nvinfer1::ILogger::Severity::kERROR, "registering plugin creators at load time failed");
        }
    }
};

LoadTimeRegistration const gLoadTimeRegistration;
#endif

}  // namespace
}  // namespace plugin
}  // namespace fgsa

FGSA_PLUGIN_EXPORT void setLoggerFinder(nvinfer1::ILoggerFinder* finder) {
    fgsa::plugin::setLoggerFinder(finder);
}

FGSA_PLUGIN_EXPORT nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators) {
    using namespace fgsa::plugin;
    nbCreators = 0;
    try {
        Creators& c = creators();
        int32_t n = 0;
        for (int32_t i = 0; i < kNbCreators; ++i) {
            if (!c.registeredAtLoad[i]) c.handedOut[n++] = c.all[i];
        }
        nbCreators = n;
        return c.handedOut.data();
    } catch (...) {
        logMessage(nvinfer1::ILogger::Severity::kERROR, "getCreators failed");
    }
    nbCreators = 0;
    return nullptr;
}
