#include "base/weight_files.hpp"

#include <optional>
#include <sys/stat.h>

#include "base/errors.hpp"

namespace ovd {

namespace {

struct Identity {
    uint64_t device, inode, bytes;
    int64_t modified_ns;
};

std::optional<Identity> identity_of(const std::string& path) {
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0) return std::nullopt;
    return Identity{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino), static_cast<uint64_t>(st.st_size),
                    static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

}  // namespace

WeightFiles WeightFiles::snapshot(const std::filesystem::path& root) {
    WeightFiles files;
    std::error_code error;
    for (auto it = std::filesystem::recursive_directory_iterator(root, error);
         !error && it != std::filesystem::recursive_directory_iterator(); it.increment(error)) {
        if (it->path().extension() != ".bin" || !it->is_regular_file(error)) continue;
        if (auto id = identity_of(it->path().string()))
            files.files_.push_back({it->path().string(), id->device, id->inode, id->bytes, id->modified_ns});
    }
    return files;
}

void WeightFiles::check_unchanged() const {
    for (const File& file : files_) {
        const auto now = identity_of(file.path);
        // Gone or another file now: the loaded one lives on in the mapping.
        if (!now || now->device != file.device || now->inode != file.inode) continue;
        if (now->bytes == file.bytes && now->modified_ns == file.modified_ns) continue;
        const std::string what = now->bytes == file.bytes
                                     ? "was rewritten"
                                     : "changed size (" + std::to_string(file.bytes) + " -> " + std::to_string(now->bytes) + " bytes)";
        throw EngineError(ErrorCode::ModelChanged,
                          file.path + " " + what +
                              " after the model was loaded; its weights are memory-mapped, so the model cannot run "
                              "until it is loaded again (replace model files with a new file and a rename, not in place)");
    }
}

}  // namespace ovd
