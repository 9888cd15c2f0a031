#include "models/autoencoder_kl.hpp"

#include <algorithm>
#include <cmath>

#include <openvino/core/preprocess/pre_post_process.hpp>
#include <openvino/opsets/opset13.hpp>

#include "base/errors.hpp"
#include "base/random_generator.hpp"
#include "base/tensor_ops.hpp"

namespace ovd {
namespace {

// Wraps the decoder so it returns what the user sees: z' = z / scaling + shift in, then
// clamp(x * 0.5 + 0.5, 0, 1) * 255 converted to u8 and laid out NHWC.
std::shared_ptr<ov::Model> with_image_postprocessing(std::shared_ptr<ov::Model> decoder, float scaling, float shift) {
    using namespace ov::opset13;
    ov::preprocess::PrePostProcessor ppp(decoder);
    if (scaling != 1.0f) ppp.input().preprocess().scale(scaling);
    if (shift != 0.0f) ppp.input().preprocess().mean(-shift);
    ppp.output().postprocess().custom([](const ov::Output<ov::Node>& port) {
        auto half = Constant::create(ov::element::f32, ov::Shape{}, {0.5f});
        auto scaled = std::make_shared<Multiply>(port, half);
        auto shifted = std::make_shared<Add>(scaled, half);
        auto clamped = std::make_shared<Clamp>(shifted, 0.0, 1.0);
        return std::make_shared<Multiply>(clamped, Constant::create(ov::element::f32, ov::Shape{}, {255.0f}));
    });
    ppp.output().postprocess().convert_element_type(ov::element::u8);
    ppp.output().model().set_layout("NCHW");
    ppp.output().tensor().set_layout("NHWC");
    return ppp.build();
}

// [batch, channels as they are, height, width] for a model's only input.
auto image_shape(size_t batch, size_t height, size_t width) {
    return [=](const std::string&, ov::PartialShape shape) -> std::optional<ov::PartialShape> {
        if (shape.rank() != 4) return std::nullopt;
        return ov::PartialShape{static_cast<int64_t>(batch), shape[1], static_cast<int64_t>(height), static_cast<int64_t>(width)};
    };
}

}  // namespace

size_t AutoencoderKL::scale_factor_of(const ModelFolder& folder) {
    const auto blocks = folder.json("vae_decoder/config.json").get_or<std::vector<double>>("block_out_channels", {64});
    return size_t(1) << (blocks.empty() ? 0 : blocks.size() - 1);
}

std::shared_ptr<AutoencoderKL> AutoencoderKL::load(const ModelFolder& folder, bool with_encoder, const std::string& device,
                                                   const PropertyMap& properties, const std::optional<StaticImages>& fixed) {
    auto vae = std::make_shared<AutoencoderKL>();
    const Json config = folder.json("vae_decoder/config.json");
    vae->scale_factor_ = scale_factor_of(folder);
    vae->latent_channels_ = config.get_or<size_t>("latent_channels", 4);
    vae->scaling_factor_ = config.get_or<float>("scaling_factor", 1.0f);
    vae->shift_factor_ = config.get_or<float>("shift_factor", 0.0f);
    const std::string decoder_xml = folder.file("vae_decoder/openvino_model.xml").string();
    std::shared_ptr<ov::Model> decoder = read_ir(decoder_xml);
    if (fixed)
        reshape_inputs(decoder, image_shape(fixed->count, fixed->height / vae->scale_factor_, fixed->width / vae->scale_factor_),
                       decoder_xml);
    vae->decoder_ =
        IrModel::compile(with_image_postprocessing(decoder, vae->scaling_factor_, vae->shift_factor_), device, properties, decoder_xml);
    if (with_encoder) {
        vae->encoder_xml_ = folder.file("vae_encoder/openvino_model.xml").string();
        vae->encoder_device_ = device;
        vae->encoder_properties_ = properties;
        vae->fixed_ = fixed;
    }
    return vae;
}

IrModel& AutoencoderKL::encoder() const {
    if (encoder_xml_.empty()) throw EngineError(ErrorCode::UnsupportedModel, "the model folder has no vae_encoder");
    // A failed compile leaves the flag unset (call_once rethrows), so a later call tries again.
    std::call_once(encoder_once_, [this] {
        IrModel::Rewrite rewrite;
        if (fixed_)
            rewrite = [this](const std::shared_ptr<ov::Model>& model) {
                reshape_inputs(model, image_shape(1, fixed_->height, fixed_->width), encoder_xml_);
            };
        encoder_ = IrModel::load(encoder_xml_, encoder_device_, encoder_properties_, rewrite);
    });
    return *encoder_;
}

ov::Tensor AutoencoderKL::decode(const ov::Tensor& latent) const {
    auto request = decoder_->borrow();
    request.write_input(0, latent);
    try {
        request->infer();
    } catch (const std::exception& e) {
        throw EngineError(ErrorCode::Runtime, std::string("VAE decode failed: ") + e.what());
    }
    return copy_tensor(request->get_output_tensor());
}

ov::Tensor AutoencoderKL::run_encoder(const ov::Tensor& image, bool& is_distribution) const {
    IrModel& model = encoder();
    auto request = model.borrow();
    request.write_input(0, image);
    try {
        request->infer();
    } catch (const std::exception& e) {
        throw EngineError(ErrorCode::Runtime, std::string("VAE encode failed: ") + e.what());
    }
    const auto port = model.compiled().output(0);
    is_distribution = port.get_names().count("latent_parameters") > 0;
    return copy_tensor(request->get_tensor(port));
}

void AutoencoderKL::scale_latent(ov::Tensor& latent) const {
    float* z = latent.data<float>();
    for (size_t i = 0; i < latent.get_size(); ++i) z[i] = (z[i] - shift_factor_) * scaling_factor_;
}

ov::Tensor AutoencoderKL::encode(const ov::Tensor& image, RandomGenerator& rng) const {
    bool is_distribution = false;
    ov::Tensor latent = run_encoder(image, is_distribution);
    if (is_distribution) {
        // [1, 2C, h, w]: mean then log-variance; sample mean + std * N(0,1).
        const ov::Shape& shape = latent.get_shape();
        const size_t channels = shape[1] / 2, plane = shape[2] * shape[3], count = channels * plane;
        ov::Tensor sample(ov::element::f32, ov::Shape{1, channels, shape[2], shape[3]});
        const float* mean = latent.data<const float>();
        const float* logvar = mean + count;
        float* z = sample.data<float>();
        rng.fill_normal(z, count);
        for (size_t i = 0; i < count; ++i) {
            const float clamped = std::min(std::max(logvar[i], -30.0f), 20.0f);
            const float std_dev = static_cast<float>(std::exp(0.5 * clamped));
            z[i] = mean[i] + std_dev * z[i];
        }
        latent = sample;
    }
    scale_latent(latent);
    return latent;
}

ov::Tensor AutoencoderKL::encode_mean(const ov::Tensor& image) const {
    bool is_distribution = false;
    ov::Tensor latent = run_encoder(image, is_distribution);
    if (is_distribution) {
        const ov::Shape& shape = latent.get_shape();
        ov::Tensor mean(ov::element::f32, ov::Shape{1, shape[1] / 2, shape[2], shape[3]});
        std::copy_n(latent.data<const float>(), mean.get_size(), mean.data<float>());
        latent = mean;
    }
    scale_latent(latent);
    return latent;
}

}  // namespace ovd
