#include "pipelines/flux_latent_packing.hpp"

#include "base/errors.hpp"

namespace ovd {

ov::Tensor pack_latents(const ov::Tensor& latents) {
    const ov::Shape& s = latents.get_shape();
    if (s.size() != 4 || s[2] % 2 || s[3] % 2) throw EngineError(ErrorCode::Internal, "pack_latents needs [B,C,H,W] with even H and W");
    const size_t batch = s[0], channels = s[1], height = s[2], width = s[3], h2 = height / 2, w2 = width / 2;
    ov::Tensor out(ov::element::f32, ov::Shape{batch, h2 * w2, channels * 4});
    const float* src = latents.data<const float>();
    float* dst = out.data<float>();
    for (size_t b = 0; b < batch; ++b)
        for (size_t c = 0; c < channels; ++c)
            for (size_t i = 0; i < h2; ++i)
                for (size_t j = 0; j < w2; ++j) {
                    const float* p = src + ((b * channels + c) * height + 2 * i) * width + 2 * j;
                    float* q = dst + ((b * h2 + i) * w2 + j) * channels * 4 + c * 4;
                    q[0] = p[0];
                    q[1] = p[1];
                    q[2] = p[width];
                    q[3] = p[width + 1];
                }
    return out;
}

ov::Tensor unpack_latents(const ov::Tensor& packed, size_t height, size_t width) {
    const ov::Shape& s = packed.get_shape();
    const size_t h2 = height / 2, w2 = width / 2;
    if (s.size() != 3 || height % 2 || width % 2 || s[1] != h2 * w2 || s[2] % 4)
        throw EngineError(ErrorCode::Internal, "unpack_latents: packed shape does not match the latent size");
    const size_t batch = s[0], channels = s[2] / 4;
    ov::Tensor out(ov::element::f32, ov::Shape{batch, channels, height, width});
    const float* src = packed.data<const float>();
    float* dst = out.data<float>();
    for (size_t b = 0; b < batch; ++b)
        for (size_t c = 0; c < channels; ++c)
            for (size_t i = 0; i < h2; ++i)
                for (size_t j = 0; j < w2; ++j) {
                    const float* q = src + ((b * h2 + i) * w2 + j) * channels * 4 + c * 4;
                    float* p = dst + ((b * channels + c) * height + 2 * i) * width + 2 * j;
                    p[0] = q[0];
                    p[1] = q[1];
                    p[width] = q[2];
                    p[width + 1] = q[3];
                }
    return out;
}

ov::Tensor latent_image_ids(size_t packed_height, size_t packed_width) {
    ov::Tensor ids(ov::element::f32, ov::Shape{packed_height * packed_width, 3});
    float* d = ids.data<float>();
    for (size_t i = 0; i < packed_height; ++i)
        for (size_t j = 0; j < packed_width; ++j) {
            float* row = d + (i * packed_width + j) * 3;
            row[0] = 0.0f;
            row[1] = static_cast<float>(i);
            row[2] = static_cast<float>(j);
        }
    return ids;
}

ov::Tensor mask_to_latent_channels(const ov::Tensor& mask, size_t scale) {
    const ov::Shape& s = mask.get_shape();
    if (s.size() != 4 || s[1] != 1 || s[2] % scale || s[3] % scale)
        throw EngineError(ErrorCode::Internal, "mask_to_latent_channels needs [B,1,H,W] divisible by the scale");
    const size_t batch = s[0], height = s[2] / scale, width = s[3] / scale, full_width = s[3];
    ov::Tensor out(ov::element::f32, ov::Shape{batch, scale * scale, height, width});
    const float* src = mask.data<const float>();
    float* dst = out.data<float>();
    for (size_t b = 0; b < batch; ++b)
        for (size_t a = 0; a < scale; ++a)
            for (size_t c = 0; c < scale; ++c)
                for (size_t i = 0; i < height; ++i)
                    for (size_t j = 0; j < width; ++j)
                        dst[((b * scale * scale + a * scale + c) * height + i) * width + j] =
                            src[(b * s[2] + scale * i + a) * full_width + scale * j + c];
    return out;
}

}  // namespace ovd
