#include "lora/safetensors.hpp"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "base/errors.hpp"
#include "base/json.hpp"

namespace ovd {
namespace {

size_t dtype_size(const std::string& dtype) {
    if (dtype == "F64" || dtype == "I64" || dtype == "U64") return 8;
    if (dtype == "F32" || dtype == "I32" || dtype == "U32") return 4;
    if (dtype == "F16" || dtype == "BF16" || dtype == "I16" || dtype == "U16") return 2;
    if (dtype == "I8" || dtype == "U8" || dtype == "BOOL" || dtype == "F8_E4M3" || dtype == "F8_E5M2") return 1;
    return 0;
}

float half_to_float(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
    uint32_t exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff, bits;
    if (exponent == 0) {
        if (mantissa == 0) {
            bits = sign;
        } else {  // subnormal: normalize
            exponent = 127 - 15 + 1;
            while (!(mantissa & 0x400)) {
                mantissa <<= 1;
                --exponent;
            }
            bits = sign | (exponent << 23) | ((mantissa & 0x3ff) << 13);
        }
    } else if (exponent == 0x1f) {
        bits = sign | 0x7f800000 | (mantissa << 13);
    } else {
        bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

}  // namespace

SafetensorsFile SafetensorsFile::read(const std::string& path) {
    auto fail = [&](const std::string& problem) { return invalid_argument("bad safetensors file " + path + ": " + problem); };
    // A directory opens as a stream on Linux and reports a nonsense size: check what the path is first.
    std::error_code ec;
    const std::filesystem::file_status status = std::filesystem::status(path, ec);
    if (status.type() == std::filesystem::file_type::not_found)
        throw EngineError(ErrorCode::ModelNotFound, "adapter file not found: " + path);
    if (status.type() == std::filesystem::file_type::directory)
        throw invalid_argument("adapter path " + path + " is a directory; give the .safetensors file inside it");
    if (!ec && status.type() != std::filesystem::file_type::regular)
        throw invalid_argument("adapter path " + path + " is not a regular file");
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in) throw EngineError(ErrorCode::ModelNotFound, "adapter file not found or not readable: " + path);
    const std::streamoff file_size = in.tellg();
    if (file_size < 0) throw fail("cannot read its size");
    in.seekg(0);
    if (file_size < 8) throw fail("shorter than its 8-byte header length");
    uint8_t length_bytes[8];
    in.read(reinterpret_cast<char*>(length_bytes), 8);
    uint64_t header_length = 0;
    for (int i = 7; i >= 0; --i) header_length = (header_length << 8) | length_bytes[i];
    if (header_length > static_cast<uint64_t>(file_size) - 8)
        throw fail("header length " + std::to_string(header_length) + " exceeds the file");
    std::string header(static_cast<size_t>(header_length), '\0');
    in.read(header.data(), static_cast<std::streamsize>(header_length));

    SafetensorsFile file;
    file.path_ = path;
    const size_t data_size = static_cast<size_t>(file_size) - 8 - static_cast<size_t>(header_length);
    file.data_.resize(data_size);
    in.read(reinterpret_cast<char*>(file.data_.data()), static_cast<std::streamsize>(data_size));
    if (!in) throw fail("cannot read the data section");

    Json json;
    try {
        json = Json::parse(header, path);
    } catch (const std::exception& e) {
        throw fail(std::string("header is not valid JSON: ") + e.what());
    }
    if (!json.is_object()) throw fail("header is not a JSON object");
    for (const auto& [name, entry] : json.as_object()) {
        if (name == "__metadata__") continue;
        if (!entry.is_object()) throw fail("entry '" + name + "' is not an object");
        const Json* dtype = entry.find("dtype");
        const Json* shape = entry.find("shape");
        const Json* offsets = entry.find("data_offsets");
        if (!dtype || !dtype->is_string() || !shape || !shape->is_array() || !offsets || !offsets->is_array() || offsets->size() != 2)
            throw fail("entry '" + name + "' needs dtype, shape and data_offsets [begin, end]");
        SafetensorsTensor tensor;
        tensor.dtype = dtype->as_string();
        const size_t element_size = dtype_size(tensor.dtype);
        if (!element_size) throw fail("entry '" + name + "' has unknown dtype " + tensor.dtype);
        size_t count = 1;
        for (const Json& d : shape->as_array()) {
            if (!d.is_integer() || d.as_int() < 0) throw fail("entry '" + name + "' has a bad shape");
            const auto dim = static_cast<size_t>(d.as_int());
            if (dim && count > std::numeric_limits<size_t>::max() / dim) throw fail("entry '" + name + "' is too large");
            count *= dim;
            tensor.shape.push_back(dim);
        }
        const Json& begin = offsets->at(size_t{0});
        const Json& end = offsets->at(size_t{1});
        if (!begin.is_integer() || !end.is_integer() || begin.as_int() < 0 || end.as_int() < begin.as_int() ||
            static_cast<uint64_t>(end.as_int()) > data_size)
            throw fail("entry '" + name + "' has data_offsets outside the data section");
        tensor.offset = static_cast<size_t>(begin.as_int());
        tensor.size = static_cast<size_t>(end.as_int() - begin.as_int());
        if (count > std::numeric_limits<size_t>::max() / element_size || tensor.size != count * element_size)
            throw fail("entry '" + name + "' has " + std::to_string(tensor.size) + " bytes, its shape needs " +
                       std::to_string(count * element_size));
        file.tensors_[name] = std::move(tensor);
    }
    return file;
}

std::vector<float> SafetensorsFile::to_f32(const std::string& name) const {
    const SafetensorsTensor& t = tensors_.at(name);
    const uint8_t* src = data_.data() + t.offset;
    std::vector<float> out;
    if (t.dtype == "F32") {
        out.resize(t.size / 4);
        std::memcpy(out.data(), src, t.size);
    } else if (t.dtype == "F16" || t.dtype == "BF16") {
        out.resize(t.size / 2);
        for (size_t i = 0; i < out.size(); ++i) {
            uint16_t v;
            std::memcpy(&v, src + 2 * i, 2);
            if (t.dtype == "F16") {
                out[i] = half_to_float(v);
            } else {
                const uint32_t bits = static_cast<uint32_t>(v) << 16;
                std::memcpy(&out[i], &bits, 4);
            }
        }
    } else {
        throw invalid_argument(path_ + ": tensor '" + name + "' has dtype " + t.dtype + "; LoRA weights must be F32, F16 or BF16");
    }
    return out;
}

}  // namespace ovd
