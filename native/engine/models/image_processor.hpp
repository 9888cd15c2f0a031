#pragma once
// Input image and mask preprocessing, as small OpenVINO graphs on CPU so the pixels match the oracle:
// bicubic (Pillow) resize of u8 images, normalization to [-1, 1], mask binarization and the
// nearest-neighbour downscale of masks to latent size.
#include <openvino/openvino.hpp>

namespace ovd {

// u8 NHWC [1,h,w,C] -> u8 NHWC [1,height,width,C]; always resamples, even at the same size.
ov::Tensor resize_image_u8(const ov::Tensor& image, size_t height, size_t width);
// RGB u8 NHWC [1,H,W,3] -> f32 NCHW [1,3,H,W] = u8 / 127.5 - 1.
ov::Tensor normalize_image(const ov::Tensor& image_u8);
// u8 NHWC mask [1,H,W,3] (RGB) or [1,H,W,1] (gray) -> f32 NCHW [1,1,H,W]: 1 where gray >= 127.5, else 0.
ov::Tensor binarize_mask(const ov::Tensor& mask_u8);
// f32 NCHW [1,1,H,W] -> f32 NCHW [1,1,height,width] by nearest neighbour (floor, asymmetric).
ov::Tensor downscale_mask(const ov::Tensor& mask, size_t height, size_t width);

}  // namespace ovd
