#include "allocator_tuning.hpp"

#include <cstdlib>
#include <string>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace ovd {
namespace {

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
        // glibc caps the threshold at HEAP_MAX/2 (32 MiB on 64-bit) and rejects larger values.
        if (end == value.c_str() || *end != '\0' || parsed > (32ull << 20)) {
            tuning.reason = "ignored OV_DIFFUSION_MALLOC_MMAP_THRESHOLD='" + value + "' (expected bytes up to 33554432, 0 or off)";
            return tuning;
        }
        threshold = static_cast<size_t>(parsed);
    }
#if defined(__GLIBC__)
    if (mallopt(M_MMAP_THRESHOLD, static_cast<int>(threshold)) == 1) {
        tuning.applied = true;
        tuning.mmap_threshold = threshold;
    } else {
        tuning.reason = "mallopt(M_MMAP_THRESHOLD) refused " + std::to_string(threshold);
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

}  // namespace ovd
