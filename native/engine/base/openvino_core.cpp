#include "base/openvino_core.hpp"

#include <mutex>

#include "base/allocator_tuning.hpp"
#include "base/errors.hpp"

namespace ovd {
namespace {
std::mutex g_extension_mutex;
std::string g_extension_path;
}  // namespace

ov::Core& shared_core() {
    // ov::Core is thread-safe for read_model/compile_model; one instance shares its plugin and cache state.
    // Every model load goes through here, so the allocator is set up before the first large allocation.
    tune_allocator_once();
    static ov::Core core;
    return core;
}

double ms_since(Clock::time_point start) { return std::chrono::duration<double, std::milli>(Clock::now() - start).count(); }

ov::AnyMap to_any_map(const PropertyMap& properties) {
    ov::AnyMap map;
    for (const auto& [key, value] : properties) map.emplace(key, value);
    return map;
}

std::string openvino_version() {
    const ov::Version version = ov::get_openvino_version();
    return version.buildNumber;
}

std::vector<std::string> available_devices() {
    try {
        return shared_core().get_available_devices();
    } catch (const std::exception& e) {
        throw EngineError(ErrorCode::Runtime, std::string("cannot list OpenVINO devices: ") + e.what());
    }
}

void load_tokenizers_extension(const std::string& library_path) {
    std::lock_guard<std::mutex> lock(g_extension_mutex);
    if (!g_extension_path.empty()) {
        if (g_extension_path == library_path) return;
        throw invalid_argument("the tokenizers extension is already loaded from " + g_extension_path + "; cannot load a second one from " +
                               library_path);
    }
    try {
        shared_core().add_extension(library_path);
    } catch (const std::exception& e) {
        throw EngineError(ErrorCode::Runtime, "cannot load the openvino_tokenizers extension " + library_path + ": " + e.what());
    }
    g_extension_path = library_path;
}

bool tokenizers_extension_loaded() {
    std::lock_guard<std::mutex> lock(g_extension_mutex);
    return !g_extension_path.empty();
}

}  // namespace ovd
