#pragma once
// A strict reader for .safetensors files: 8-byte little-endian header length, a JSON header naming
// each tensor's dtype, shape and byte range, then the data. Every offset and size is checked, so a
// truncated or corrupt file is an error, never an out-of-bounds read.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ovd {

struct SafetensorsTensor {
    std::string dtype;  // "F32", "F16", "BF16", ... as written in the file
    std::vector<size_t> shape;
    size_t offset = 0, size = 0;  // byte range inside the data section
};

class SafetensorsFile {
public:
    // Throws ERR_INVALID_ARGUMENT naming the file and the problem.
    static SafetensorsFile read(const std::string& path);

    const std::map<std::string, SafetensorsTensor>& tensors() const { return tensors_; }
    // The tensor converted to float32 (F32, F16 and BF16 only).
    std::vector<float> to_f32(const std::string& name) const;
    const std::string& path() const { return path_; }

private:
    std::string path_;
    std::vector<uint8_t> data_;  // the data section
    std::map<std::string, SafetensorsTensor> tensors_;
};

}  // namespace ovd
