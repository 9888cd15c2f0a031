#pragma once
// glibc allocator settings for a process that compiles and runs large OpenVINO models.
//
// glibc raises its mmap threshold dynamically (up to 32 MiB) each time an mmapped block is freed. After the first
// inference, OpenVINO's multi-megabyte activation buffers are then carved from the heap instead of mmapped, and the
// freed space stays resident: on SD 1.5 at 512x512 the process peaks ~110 MiB higher than with a fixed 4 MiB
// threshold, at the same speed. Compilation is the opposite case: it allocates and frees many large scratch
// buffers, and mmapping each of them costs page faults (+7 % compile time for the SD 1.5 UNet with 4 MiB). So
// while any model compiles, large blocks stay in the heap (32 MiB mmap threshold, 64 MiB trim threshold, as
// glibc's dynamic mode ends up with); when the last compile ends, the free heap is returned to the OS
// (malloc_trim) and the inference setting applies (bench/allocator.js, docs/benchmarks.md).
#include <cstddef>
#include <string>

namespace ovd {

struct AllocatorTuning {
    bool applied = false;       // mallopt() accepted the settings
    size_t mmap_threshold = 0;  // bytes, outside compilation; 0 when not applied
    std::string reason;         // why not applied (opt-out, not glibc, mallopt refused, bad value)
};

constexpr size_t kDefaultMmapThreshold = 4u << 20;

// Reads OV_DIFFUSION_MALLOC_MMAP_THRESHOLD once (a size in bytes up to 32 MiB, or 0/off to leave glibc's dynamic
// default alone) and applies the inference setting.
const AllocatorTuning& tune_allocator_once();

// Scope of one model compilation: the first one in flight switches to the compile settings, the last one to end
// trims the heap and switches back. No-op when the tuning is not applied. Thread-safe.
class CompileAllocationScope {
public:
    CompileAllocationScope();
    ~CompileAllocationScope();
    CompileAllocationScope(const CompileAllocationScope&) = delete;
    CompileAllocationScope& operator=(const CompileAllocationScope&) = delete;
};

}  // namespace ovd
