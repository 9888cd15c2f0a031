#pragma once
// The weight files of a loaded model folder (every *.bin in it), as they were at load. OpenVINO memory-maps them and
// the compiled models keep reading some weights from the mapping, so a file rewritten in place while the model is
// loaded (cp or a download over it, truncate) changes memory under the model: a shorter file kills the process with
// SIGBUS at the next read past its end, a rewritten one silently changes the weights. A file replaced by a new one
// (rm and write, rename over it) is harmless: the mapping keeps the old file. So each call first checks that no file
// was changed in place, and refuses to run if one was.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace ovd {

class WeightFiles {
public:
    static WeightFiles snapshot(const std::filesystem::path& root);

    // Throws ERR_MODEL_CHANGED naming the first file whose inode is the loaded one but whose size or modification
    // time is not; a few stat() calls.
    void check_unchanged() const;
    size_t size() const { return files_.size(); }

private:
    struct File {
        std::string path;
        uint64_t device = 0, inode = 0, bytes = 0;
        int64_t modified_ns = 0;
    };
    std::vector<File> files_;
};

}  // namespace ovd
