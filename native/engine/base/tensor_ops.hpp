#pragma once
// Copies and reshuffles of whole tensors along their leading or last dimensions: what the pipelines do to
// conditioning tensors between models. Every function returns a new tensor that owns its memory.
#include <cstddef>

#include <openvino/openvino.hpp>

namespace ovd {

ov::Tensor copy_tensor(const ov::Tensor& source);
// Rows [r0, r1) along dim 0.
ov::Tensor slice_rows(const ov::Tensor& t, size_t r0, size_t r1);
// Each row repeated `times` consecutively along dim 0: [a,b] x2 -> [a,a,b,b].
ov::Tensor repeat_rows(const ov::Tensor& t, size_t times);
// `rows` rows of zeros shaped like t's rows.
ov::Tensor zeros_like_rows(const ov::Tensor& t, size_t rows);
// [negative rows ; positive rows] along dim 0.
ov::Tensor stack_rows(const ov::Tensor& negative, const ov::Tensor& positive);
// f32 [.., da] and [.., db] -> [.., da + db] (all other dims equal).
ov::Tensor concat_last_dim(const ov::Tensor& a, const ov::Tensor& b);
// f32 [B, L1, D] and [B, L2, D] -> [B, L1 + L2, D].
ov::Tensor concat_sequence(const ov::Tensor& a, const ov::Tensor& b);
// f32 [B, L, D] -> [B, L, width]: cut, or padded with zeros on the right.
ov::Tensor fit_last_dim(const ov::Tensor& t, size_t width);

}  // namespace ovd
