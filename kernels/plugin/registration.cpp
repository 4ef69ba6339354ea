// How TensorRT finds the creators of this library. Three ways of loading it must all work:
//
//  - `trtexec --staticPlugins=lib.so` and `ctypes.CDLL("lib.so")` only dlopen the library, so its creators
//    are registered with the process-wide registry when it loads (a static object below, what
//    REGISTER_TENSORRT_PLUGIN does, written out to register IPluginCreatorV3One creators in our namespace);
//  - `IPluginRegistry::loadLibrary` / `tensorrt.get_plugin_registry().load_library` / `--dynamicPlugins`
//    look up the exported `setLoggerFinder` and `getCreators` and register what getCreators returns.
//    Because loading the library already registered the creators, getCreators leaves out every creator
//    that the load-time registration placed, so nothing is registered twice.
//
// `getPluginCreators` (the deprecated entry point for IPluginCreator v1) is deliberately not exported:
// our creators are IPluginCreatorV3One and must not be handed out as the v1 interface.
#include <NvInferRuntime.h>

#include <array>

#include "plugin_names.h"
#include "plugin_utils.h"
#include "plugins.h"

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
    // Set by the load-time registration; those creators are already in the registry.
    std::array<bool, kNbCreators> registeredAtLoad{false, false};
    // What getCreators hands out: the creators not registered at load time.
    std::array<nvinfer1::IPluginCreatorInterface*, kNbCreators> pending{};
};

Creators& creators() {
    static Creators instance;
    return instance;
}

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
        for (int32_t i = 0; i < kNbCreators; ++i) {
            if (!c.registeredAtLoad[i]) c.pending[nbCreators++] = c.all[i];
        }
        return c.pending.data();
    } catch (...) {
        logMessage(nvinfer1::ILogger::Severity::kERROR, "getCreators failed");
    }
    nbCreators = 0;
    return nullptr;
}
