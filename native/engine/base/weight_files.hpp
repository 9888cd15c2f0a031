#pragma once
// The weight files of a loaded model folder (every *.bin in it), as they were at load. OpenVINO memory-maps them and
// the compiled models keep reading some weights from the mapping, so a file rewritten in place while the model is
// loaded (cp or a download over it, truncate) changes memory under the model: a shorter file kills the process with
// SIGBUS at the next read past its end, a rewritten one silently changes the weights. A file replaced by a new one
// (rm and write, rename over it) is harmless: the mapping keeps the old file.
//
// Two guards. Each call first checks that no file was changed in place, and refuses to run if one was. And while the
// model is loaded, each file holds a read lease (fcntl F_SETLEASE) where the kernel grants one (the process owns the
// file, a local filesystem): another process that opens the file for writing or truncates it then waits until the
// running calls have stopped (each at its next step, with ERR_MODEL_CHANGED) and the leases are let go, so a file is
// never cut under a running call. The kernel waits at most /proc/sys/fs/lease-break-time (45 s by default) for that.
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace ovd {

class WeightFiles {
public:
    static WeightFiles snapshot(const std::filesystem::path& root);
    WeightFiles();
    WeightFiles(WeightFiles&&) noexcept;
    WeightFiles& operator=(WeightFiles&&) noexcept;
    ~WeightFiles();

    // Throws ERR_MODEL_CHANGED when a file is being rewritten (its lease is being broken), or names the first file
    // whose inode is the loaded one but whose size or modification time is not; a few stat() calls.
    void check_unchanged() const;
    size_t size() const { return files_.size(); }

    // A running call: leases are let go only once no call holds one of these. check_unchanged() after taking it.
    class InUse {
    public:
        explicit InUse(const WeightFiles& files);
        ~InUse();
        InUse(const InUse&) = delete;
        InUse& operator=(const InUse&) = delete;

    private:
        const WeightFiles& files_;
    };

private:
    struct File {
        std::string path;
        uint64_t device = 0, inode = 0, bytes = 0;
        int64_t modified_ns = 0;
    };
    class Leases;
    std::vector<File> files_;
    std::unique_ptr<Leases> leases_;
};

}  // namespace ovd
