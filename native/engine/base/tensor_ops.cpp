#include "base/tensor_ops.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace ovd {

ov::Tensor copy_tensor(const ov::Tensor& source) {
    ov::Tensor copy(source.get_element_type(), source.get_shape());
    source.copy_to(copy);
    return copy;
}

namespace {
size_t row_elements(const ov::Tensor& t) { return t.get_size() / t.get_shape()[0]; }
}  // namespace

ov::Tensor slice_rows(const ov::Tensor& t, size_t r0, size_t r1) {
    ov::Shape shape = t.get_shape();
    shape[0] = r1 - r0;
    ov::Tensor out(t.get_element_type(), shape);
    const size_t row_bytes = row_elements(t) * t.get_element_type().size();
    std::memcpy(out.data(), static_cast<const uint8_t*>(t.data()) + r0 * row_bytes, (r1 - r0) * row_bytes);
    return out;
}

ov::Tensor concat_last_dim(const ov::Tensor& a, const ov::Tensor& b) {
    ov::Shape shape = a.get_shape();
    const size_t da = shape.back(), db = b.get_shape().back();
    const size_t outer = a.get_size() / da;
    shape.back() = da + db;
    ov::Tensor out(ov::element::f32, shape);
    const float* pa = a.data<const float>();
    const float* pb = b.data<const float>();
    float* po = out.data<float>();
    for (size_t i = 0; i < outer; ++i) {
        std::copy_n(pa + i * da, da, po + i * (da + db));
        std::copy_n(pb + i * db, db, po + i * (da + db) + da);
    }
    return out;
}

ov::Tensor repeat_rows(const ov::Tensor& t, size_t times) {
    ov::Shape shape = t.get_shape();
    const size_t rows = shape[0];
    shape[0] = rows * times;
    ov::Tensor out(t.get_element_type(), shape);
    const size_t row_bytes = row_elements(t) * t.get_element_type().size();
    for (size_t r = 0; r < rows; ++r)
        for (size_t k = 0; k < times; ++k)
            std::memcpy(static_cast<uint8_t*>(out.data()) + (r * times + k) * row_bytes,
                        static_cast<const uint8_t*>(t.data()) + r * row_bytes, row_bytes);
    return out;
}

ov::Tensor zeros_like_rows(const ov::Tensor& t, size_t rows) {
    ov::Shape shape = t.get_shape();
    shape[0] = rows;
    ov::Tensor out(t.get_element_type(), shape);
    std::memset(out.data(), 0, out.get_byte_size());
    return out;
}

// [negative rows ; positive rows] along dim 0.
ov::Tensor stack_rows(const ov::Tensor& negative, const ov::Tensor& positive) {
    ov::Shape shape = positive.get_shape();
    shape[0] = negative.get_shape()[0] + positive.get_shape()[0];
    ov::Tensor out(positive.get_element_type(), shape);
    std::memcpy(out.data(), negative.data(), negative.get_byte_size());
    std::memcpy(static_cast<uint8_t*>(out.data()) + negative.get_byte_size(), positive.data(), positive.get_byte_size());
    return out;
}

// [B, L, D] -> [B, L, width]: cut, or padded with zeros on the right.
ov::Tensor fit_last_dim(const ov::Tensor& t, size_t width) {
    const ov::Shape& s = t.get_shape();
    const size_t rows = s[0] * s[1], d = s[2], kept = std::min(d, width);
    ov::Tensor out(ov::element::f32, ov::Shape{s[0], s[1], width});
    float* dst = out.data<float>();
    std::fill_n(dst, out.get_size(), 0.0f);
    const float* src = t.data<const float>();
    for (size_t r = 0; r < rows; ++r) std::copy_n(src + r * d, kept, dst + r * width);
    return out;
}

// [B, L1, D] and [B, L2, D] -> [B, L1 + L2, D].
ov::Tensor concat_sequence(const ov::Tensor& a, const ov::Tensor& b) {
    const ov::Shape& sa = a.get_shape();
    const ov::Shape& sb = b.get_shape();
    const size_t rows = sa[0], row_a = sa[1] * sa[2], row_b = sb[1] * sb[2];
    ov::Tensor out(ov::element::f32, ov::Shape{rows, sa[1] + sb[1], sa[2]});
    float* dst = out.data<float>();
    for (size_t r = 0; r < rows; ++r) {
        dst = std::copy_n(a.data<const float>() + r * row_a, row_a, dst);
        dst = std::copy_n(b.data<const float>() + r * row_b, row_b, dst);
    }
    return out;
}

}  // namespace ovd
