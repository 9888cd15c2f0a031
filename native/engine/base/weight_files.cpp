#include "base/weight_files.hpp"

#include <chrono>
#include <condition_variable>
#include <csignal>
#include <fcntl.h>
#include <mutex>
#include <optional>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

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

// A read lease on `path`, or -1 where the kernel grants none (another owner without CAP_LEASE, a network
// filesystem, a writer already open). The break notice is a signal; SIGURG's default action is to ignore it, so
// the notice costs nothing and the watcher polls F_GETLEASE instead (SIGIO, the default notice, would kill us).
int take_read_lease(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    if (::fcntl(fd, F_SETSIG, SIGURG) == 0 && ::fcntl(fd, F_SETLEASE, F_RDLCK) == 0) return fd;
    ::close(fd);
    return -1;
}

std::string model_changed_advice() {
    return "; its weights are memory-mapped, so the model cannot run until it is loaded again (replace model files "
           "with a new file and a rename, not in place)";
}

}  // namespace

// The leases and the thread that watches them: every 200 ms it asks the kernel whether another process wants to
// write one of the files; from then on calls stop at their next step, and once none runs the leases are let go.
class WeightFiles::Leases {
public:
    explicit Leases(const std::vector<File>& files) {
        for (const File& file : files)
            if (const int fd = take_read_lease(file.path); fd >= 0) held_.push_back({fd, file.path});
        if (!held_.empty()) watcher_ = std::thread([this] { watch(); });
    }
    ~Leases() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stopping_ = true;
        }
        wake_.notify_all();
        if (watcher_.joinable()) watcher_.join();
        release();
    }
    // The file another process is waiting to write, while the leases are still held; empty otherwise.
    std::string being_written() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return held_.empty() ? std::string() : wanted_;
    }
    void enter() {
        std::lock_guard<std::mutex> lock(mutex_);
        ++running_;
    }
    void leave() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            --running_;
        }
        wake_.notify_all();
    }

private:
    struct Held {
        int fd;
        std::string path;
    };
    void watch() {
        std::unique_lock<std::mutex> lock(mutex_);
        while (!stopping_) {
            wake_.wait_for(lock, std::chrono::milliseconds(200));
            for (const Held& held : held_)
                if (wanted_.empty() && ::fcntl(held.fd, F_GETLEASE) != F_RDLCK) wanted_ = held.path;
            if (!wanted_.empty() && running_ == 0) {
                release();
                return;
            }
        }
    }
    void release() {
        for (const Held& held : held_) ::close(held.fd);
        held_.clear();
    }

    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::vector<Held> held_;
    std::string wanted_;
    size_t running_ = 0;
    bool stopping_ = false;
    std::thread watcher_;
};

WeightFiles::WeightFiles() = default;
WeightFiles::WeightFiles(WeightFiles&&) noexcept = default;
WeightFiles& WeightFiles::operator=(WeightFiles&&) noexcept = default;
WeightFiles::~WeightFiles() = default;

WeightFiles WeightFiles::snapshot(const std::filesystem::path& root) {
    WeightFiles files;
    std::error_code error;
    for (auto it = std::filesystem::recursive_directory_iterator(root, error);
         !error && it != std::filesystem::recursive_directory_iterator(); it.increment(error)) {
        if (it->path().extension() != ".bin" || !it->is_regular_file(error)) continue;
        if (auto id = identity_of(it->path().string()))
            files.files_.push_back({it->path().string(), id->device, id->inode, id->bytes, id->modified_ns});
    }
    files.leases_ = std::make_unique<Leases>(files.files_);
    return files;
}

WeightFiles::InUse::InUse(const WeightFiles& files) : files_(files) {
    if (files_.leases_) files_.leases_->enter();
}

WeightFiles::InUse::~InUse() {
    if (files_.leases_) files_.leases_->leave();
}

void WeightFiles::check_unchanged() const {
    if (const std::string wanted = leases_ ? leases_->being_written() : std::string(); !wanted.empty())
        throw EngineError(ErrorCode::ModelChanged, wanted + " is being opened for writing by another process" + model_changed_advice());
    for (const File& file : files_) {
        const auto now = identity_of(file.path);
        // Gone or another file now: the loaded one lives on in the mapping.
        if (!now || now->device != file.device || now->inode != file.inode) continue;
        if (now->bytes == file.bytes && now->modified_ns == file.modified_ns) continue;
        const std::string what = now->bytes == file.bytes
                                     ? "was rewritten"
                                     : "changed size (" + std::to_string(file.bytes) + " -> " + std::to_string(now->bytes) + " bytes)";
        throw EngineError(ErrorCode::ModelChanged, file.path + " " + what + " after the model was loaded" + model_changed_advice());
    }
}

}  // namespace ovd
