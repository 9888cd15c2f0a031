#include "base/allocator_tuning.hpp"

#include <cstdlib>
#include <mutex>
#include <string>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace ovd {
namespace {

constexpr size_t kMaxMmapThreshold = 32u << 20;  // glibc rejects more (HEAP_MAX_SIZE / 2 on 64-bit)
constexpr size_t kCompileTrimThreshold = 64u << 20;
constexpr size_t kDefaultTrimThreshold = 128u << 10;

std::mutex g_scope_mutex;
int g_compiles_in_flight = 0;

#if defined(__GLIBC__)
bool set_thresholds(size_t mmap_threshold, size_t trim_threshold) {
    return mallopt(M_MMAP_THRESHOLD, static_cast<int>(mmap_threshold)) == 1 &&
           mallopt(M_TRIM_THRESHOLD, static_cast<int>(trim_threshold)) == 1;
}
#endif

AllocatorTuning apply() {
    AllocatorTuning tuning;
    size_t threshold = kDefaultMmapThreshold;
    if (const char* env = std::getenv("OV_DIFFUSION_MALLOC_MMAP_THRESHOLD")) {
        const std::string value(env);
        char* end = nullptr;
        const unsigned long long parsed = std::strtoull(value.c_str(), &end, 10);
        if (value == "off" || (end != value.c_str() && *end == '\0' && parsed == 0)) {
            tuning.reason = "disabled by OV_DIFFUSION_MALLOC_MMAP_THRESHOLD";
            return tuning;
        }
        if (end == value.c_str() || *end != '\0' || parsed > kMaxMmapThreshold) {
            tuning.reason = "ignored OV_DIFFUSION_MALLOC_MMAP_THRESHOLD='" + value + "' (expected bytes up to 33554432, 0 or off)";
            return tuning;
        }
        threshold = static_cast<size_t>(parsed);
    }
#if defined(__GLIBC__)
    if (set_thresholds(threshold, kDefaultTrimThreshold)) {
        tuning.applied = true;
        tuning.mmap_threshold = threshold;
    } else {
        tuning.reason = "mallopt() refused an mmap threshold of " + std::to_string(threshold);
    }
#else
    tuning.reason = "not glibc";
#endif
    return tuning;
}

}  // namespace

const AllocatorTuning& tune_allocator_once() {
    static const AllocatorTuning tuning = apply();
    return tuning;
}

CompileAllocationScope::CompileAllocationScope() {
#if defined(__GLIBC__)
    if (!tune_allocator_once().applied) return;
    std::lock_guard<std::mutex> lock(g_scope_mutex);
    if (g_compiles_in_flight++ == 0) set_thresholds(kMaxMmapThreshold, kCompileTrimThreshold);
#endif
}

CompileAllocationScope::~CompileAllocationScope() {
#if defined(__GLIBC__)
    const AllocatorTuning& tuning = tune_allocator_once();
    if (!tuning.applied) return;
    std::lock_guard<std::mutex> lock(g_scope_mutex);
    if (--g_compiles_in_flight == 0) {
        malloc_trim(0);
        set_thresholds(tuning.mmap_threshold, kDefaultTrimThreshold);
    }
#endif
}

}  // namespace ovd
