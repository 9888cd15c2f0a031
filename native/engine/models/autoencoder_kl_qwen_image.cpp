#include "models/autoencoder_kl_qwen_image.hpp"

#include <algorithm>
#include <cmath>

#include "base/errors.hpp"
#include "base/random_generator.hpp"

namespace ovd {

namespace {

// A 5-D input [N, C, 1 frame, height, width] (static shapes).
IrModel::Rewrite one_frame(size_t batch, size_t height, size_t width, const std::string& xml) {
    return [=](const std::shared_ptr<ov::Model>& model) {
        reshape_inputs(
            model,
            [&](const std::string&, ov::PartialShape shape) -> std::optional<ov::PartialShape> {
                if (shape.rank() != 5) return std::nullopt;
                return ov::PartialShape{static_cast<int64_t>(batch), shape[1], 1, static_cast<int64_t>(height),
                                        static_cast<int64_t>(width)};
            },
            xml);
    };
}

}  // namespace

std::shared_ptr<AutoencoderKLQwenImage> AutoencoderKLQwenImage::load(const ModelFolder& folder, const std::string& device,
                                                                     const PropertyMap& properties,
                                                                     const std::optional<StaticImages>& fixed) {
    auto vae = std::make_shared<AutoencoderKLQwenImage>();
    const Json config = folder.json("vae_decoder/config.json");
    const std::string where = folder.root().string() + "/vae_decoder/config.json";
    const Json* downsample = config.find("temperal_downsample");
    if (!downsample || !downsample->is_array())
        throw EngineError(ErrorCode::UnsupportedModel, where + ": needs temperal_downsample (one spatial halving per entry)");
    vae->scale_factor_ = size_t{1} << downsample->size();
    const auto means = config.get_or<std::vector<double>>("latents_mean", {});
    const auto stds = config.get_or<std::vector<double>>("latents_std", {});
    const size_t channels = config.get_or<size_t>("z_dim", means.size());
    if (channels == 0 || means.size() != channels || stds.size() != channels)
        throw EngineError(ErrorCode::UnsupportedModel,
                          where + ": needs latents_mean and latents_std with z_dim (" + std::to_string(channels) + ") values each");
    for (size_t c = 0; c < channels; ++c) {
        vae->mean_.push_back(static_cast<float>(means[c]));
        vae->std_.push_back(static_cast<float>(stds[c]));
    }
    const std::string decoder_xml = folder.file("vae_decoder/openvino_model.xml").string();
    vae->decoder_ = IrModel::load(
        decoder_xml, device, properties,
        fixed ? one_frame(fixed->count, fixed->height / vae->scale_factor_, fixed->width / vae->scale_factor_, decoder_xml) : nullptr);
    if (folder.exists("vae_encoder/openvino_model.xml")) {
        vae->encoder_xml_ = folder.file("vae_encoder/openvino_model.xml").string();
        vae->encoder_device_ = device;
        vae->encoder_properties_ = properties;
        vae->fixed_ = fixed;
    }
    return vae;
}

ov::Tensor AutoencoderKLQwenImage::decode(const ov::Tensor& latent) const {
    const ov::Shape& s = latent.get_shape();
    const size_t channels = mean_.size();
    if (s.size() != 4 || s[1] != channels)
        throw invalid_argument("Qwen-Image decode takes a latent [N," + std::to_string(channels) + ",h,w]");
    const size_t images = s[0], plane = s[2] * s[3];
    auto request = decoder_->borrow();
    // [N, C, 1, h, w]: the same values in the same order, with the frame axis.
    ov::Tensor input = request.input_buffer(decoder_->compiled().input(0), ov::Shape{images, channels, 1, s[2], s[3]});
    const float* z = latent.data<const float>();
    float* x = input.data<float>();
    for (size_t n = 0; n < images; ++n)
        for (size_t c = 0; c < channels; ++c)
            for (size_t k = 0; k < plane; ++k) {
                const size_t i = (n * channels + c) * plane + k;
                x[i] = z[i] * std_[c] + mean_[c];
            }
    try {
        request->infer();
    } catch (const std::exception& e) {
        throw EngineError(ErrorCode::Runtime, std::string("VAE decode failed: ") + e.what());
    }
    const ov::Tensor out = request->get_output_tensor(0);
    const ov::Shape& o = out.get_shape();
    if (o.size() != 5 || o[0] != images || o[1] != 3 || o[2] < 1)
        throw EngineError(ErrorCode::UnsupportedModel, "the Qwen-Image VAE decoder's output is not [N, 3, frames, H, W]");
    const size_t frames = o[2], height = o[3], width = o[4], pixels = height * width;
    ov::Tensor image(ov::element::u8, ov::Shape{images, height, width, 3});
    const float* y = out.data<const float>();
    uint8_t* rgb = image.data<uint8_t>();
    for (size_t n = 0; n < images; ++n)
        for (size_t ch = 0; ch < 3; ++ch) {
            const float* plane_in = y + (n * 3 + ch) * frames * pixels;  // frame 0
            for (size_t k = 0; k < pixels; ++k) {
                const float v = (plane_in[k] * 0.5f + 0.5f) * 255.0f;
                // Truncation, as the oracle; NaN (one step with shift_terminal) and anything out of range clamps.
                rgb[(n * pixels + k) * 3 + ch] = v >= 0.0f ? static_cast<uint8_t>(v < 255.0f ? v : 255.0f) : 0;
            }
        }
    return image;
}

ov::Tensor AutoencoderKLQwenImage::encode(const ov::Tensor& image, RandomGenerator& rng) const {
    if (!has_encoder()) throw invalid_argument("this Qwen-Image model has no vae_encoder");
    std::call_once(encoder_once_, [this] {
        encoder_ = IrModel::load(encoder_xml_, encoder_device_, encoder_properties_,
                                 fixed_ ? one_frame(1, fixed_->height, fixed_->width, encoder_xml_) : nullptr);
    });
    const ov::Shape& s = image.get_shape();
    if (s.size() != 4 || s[0] != 1 || s[1] != 3) throw invalid_argument("Qwen-Image encode takes an image [1,3,H,W]");
    auto request = encoder_->borrow();
    ov::Tensor input = request.input_buffer(encoder_->compiled().input(0), ov::Shape{1, 3, 1, s[2], s[3]});
    std::copy_n(image.data<const float>(), image.get_size(), input.data<float>());
    try {
        request->infer();
    } catch (const std::exception& e) {
        throw EngineError(ErrorCode::Runtime, std::string("VAE encode failed: ") + e.what());
    }
    const ov::Tensor out = request->get_output_tensor(0);
    const ov::Shape& o = out.get_shape();
    const size_t channels = mean_.size();
    if (o.size() != 5 || o[0] != 1 || o[1] != 2 * channels || o[2] < 1)
        throw EngineError(ErrorCode::UnsupportedModel, "the Qwen-Image VAE encoder's output is not [1, 2C, frames, h, w]");
    const size_t plane = o[3] * o[4], frame_stride = o[2] * plane, count = channels * plane;
    ov::Tensor latent(ov::element::f32, ov::Shape{1, channels, o[3], o[4]});
    float* z = latent.data<float>();
    rng.fill_normal(z, count);
    const float* params = out.data<const float>();
    for (size_t c = 0; c < channels; ++c) {
        const float* mean = params + c * frame_stride;                 // frame 0 of channel c
        const float* logvar = params + (channels + c) * frame_stride;  // and of its log-variance
        const float inverse_std = 1.0f / std_[c];
        for (size_t k = 0; k < plane; ++k) {
            const float clamped = std::min(std::max(logvar[k], -30.0f), 20.0f);
            const float std_dev = std::exp(0.5f * clamped);  // float exp (expf), not double: the oracle's last bit
            const float sample = mean[k] + std_dev * z[c * plane + k];
            z[c * plane + k] = (sample - mean_[c]) * inverse_std;
        }
    }
    return latent;
}

}  // namespace ovd
