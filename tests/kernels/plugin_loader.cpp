// Loads a plugin library the way TensorRT's IPluginRegistry::loadLibrary does (dlopen, then the exported
// getCreators / setLoggerFinder) and prints what it finds as one JSON object, for
// tests/kernels/test_plugin_library.py. Needs only the TensorRT headers: no libnvinfer, no GPU.
//
//   fgsa_plugin_loader LIB [LIB2]   LIB2 (e.g. a copy of LIB) is loaded as well, as a second library
#include <NvInferRuntime.h>
#include <dlfcn.h>

#include <cstdio>
#include <string>

using GetCreators = nvinfer1::IPluginCreatorInterface* const* (*)(int32_t&);

namespace {

std::string quoted(char const* s) {
    std::string out = "\"";
    for (char const* c = s ? s : ""; *c; ++c) {
        if (*c == '"' || *c == '\\') out += '\\';
        out += *c;
    }
    return out + "\"";
}

// {"path": ..., "creators": [...], "same_array_twice": bool} of one loaded library, or null on failure.
std::string describe(char const* path) {
    void* handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        std::fprintf(stderr, "dlopen(%s): %s\n", path, dlerror());
        return "null";
    }
    void* again = dlopen(path, RTLD_NOW | RTLD_LOCAL);  // a second load of the same path
    auto getCreators = reinterpret_cast<GetCreators>(dlsym(handle, "getCreators"));
    bool const hasLoggerFinder = dlsym(handle, "setLoggerFinder") != nullptr;
    std::string json = "{\"path\": " + quoted(path) + ", \"same_handle\": " + (again == handle ? "true" : "false") +
                       ", \"has_setLoggerFinder\": " + (hasLoggerFinder ? "true" : "false") + ", \"creators\": [";
    if (getCreators) {
        int32_t n = -1;
        nvinfer1::IPluginCreatorInterface* const* list = getCreators(n);
        for (int32_t i = 0; list && i < n; ++i) {
            nvinfer1::InterfaceInfo const info = list[i]->getInterfaceInfo();
            json += i ? ", " : "";
            json += "{\"interface\": " + quoted(info.kind) + ", \"interface_version\": " + std::to_string(info.major);
            if (std::string(info.kind) == "PLUGIN CREATOR_V3ONE") {
                auto* c = static_cast<nvinfer1::IPluginCreatorV3One*>(list[i]);
                json += ", \"name\": " + quoted(c->getPluginName()) + ", \"version\": " + quoted(c->getPluginVersion()) +
                        ", \"namespace\": " + quoted(c->getPluginNamespace()) + ", \"fields\": [";
                nvinfer1::PluginFieldCollection const* fc = c->getFieldNames();
                for (int32_t f = 0; fc && f < fc->nbFields; ++f) json += (f ? ", " : "") + quoted(fc->fields[f].name);
                json += "]";
            }
            json += "}";
        }
        int32_t n2 = -1;
        nvinfer1::IPluginCreatorInterface* const* list2 = getCreators(n2);
        json += std::string("], \"count\": ") + std::to_string(n) + ", \"same_array_twice\": " +
                (list2 == list && n2 == n ? "true" : "false") + "}";
    } else {
        json += "], \"count\": -1, \"same_array_twice\": false}";
    }
    return json;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s LIB [LIB2]\n", argv[0]);
        return 2;
    }
    std::string out = "[";
    for (int i = 1; i < argc; ++i) out += (i > 1 ? ", " : "") + describe(argv[i]);
    std::printf("%s]\n", out.c_str());
    return 0;
}
