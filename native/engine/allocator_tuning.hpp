#pragma once
// glibc allocator settings for a process that runs large OpenVINO models.
//
// glibc raises its mmap threshold dynamically (up to 32 MiB) each time an mmapped block is freed. After the first
// inference, OpenVINO's multi-megabyte activation buffers are then carved from the heap instead of mmapped, and the
// freed space stays resident: on SD 1.5 at 512x512 the process peaks ~110 MiB higher than with a fixed threshold,
// at the same speed (bench/, docs/benchmarks.md). A fixed threshold sends those buffers back to the OS on free.
#include <cstddef>
#include <string>

namespace ovd {

struct AllocatorTuning {
    bool applied = false;        // mallopt() accepted the setting
    size_t mmap_threshold = 0;   // bytes; 0 when not applied
    std::string reason;          // why not applied (opt-out, not glibc, mallopt refused)
};

constexpr size_t kDefaultMmapThreshold = 4u << 20;

// Applies the setting once per process, before the first model loads. The environment variable
// OV_DIFFUSION_MALLOC_MMAP_THRESHOLD overrides it: a size in bytes, or 0/off to leave glibc's dynamic default.
const AllocatorTuning& tune_allocator_once();

}  // namespace ovd
