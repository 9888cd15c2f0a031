#pragma once
// FLUX's token layout of latents: 2x2 latent pixels of every channel become one token.
#include <openvino/openvino.hpp>

namespace ovd {

// [B,C,H,W] -> [B, (H/2)(W/2), 4C]. Token (i,j) holds, for each channel c, the pixels (2i,2j),
// (2i,2j+1), (2i+1,2j), (2i+1,2j+1) at features 4c..4c+3. H and W must be even.
ov::Tensor pack_latents(const ov::Tensor& latents);
// The inverse: [B, (H/2)(W/2), 4C] -> [B,C,H,W] for the given latent height and width.
ov::Tensor unpack_latents(const ov::Tensor& packed, size_t height, size_t width);
// The transformer's img_ids: [(H/2)(W/2), 3] with row i*(W/2)+j = (0, i, j), for packed height/width.
ov::Tensor latent_image_ids(size_t packed_height, size_t packed_width);
// FluxFill: a pixel mask [B,1,H,W] -> [B, s*s, H/s, W/s] with channel (a*s + b) holding pixel
// (s*i + a, s*j + b) at (i, j), s = `scale` (the VAE scale factor).
ov::Tensor mask_to_latent_channels(const ov::Tensor& mask, size_t scale);

}  // namespace ovd
