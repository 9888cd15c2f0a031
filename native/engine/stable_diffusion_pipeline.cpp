#include "stable_diffusion_pipeline.hpp"

#include <chrono>
#include <cmath>
#include <cstring>

#include "errors.hpp"
#include "random_generator.hpp"

namespace ovd {
namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point start) {
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
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

// LCM's guidance embedding of w = (g - 1) * 1000, shape [1, dim].
ov::Tensor guidance_embedding(float guidance_scale, size_t dim) {
    ov::Tensor out(ov::element::f32, ov::Shape{1, dim});
    float* emb = out.data<float>();
    std::fill_n(emb, dim, 0.0f);
    const float w = (guidance_scale - 1.0f) * 1000.0f;
    const size_t half = dim / 2;
    const float scale = static_cast<float>(std::log(10000.0) / static_cast<double>(half - 1));
    for (size_t i = 0; i < half; ++i) {
        const float frequency = std::exp(static_cast<float>(i) * -scale);
        emb[i] = std::sin(frequency * w);
        emb[i + half] = std::cos(frequency * w);
    }
    return out;
}

}  // namespace

struct StableDiffusionPipeline::Resolved {
    Task task;
    const GenerationParams* params;
    size_t width, height, steps, batch;
    float guidance, strength;
    bool do_cfg;
};

struct StableDiffusionPipeline::UNetConditioning {
    std::vector<NamedTensor> inputs;  // encoder_hidden_states (+ text_embeds, time_ids, timestep_cond)
};

StableDiffusionPipeline::StableDiffusionPipeline(const ModelFolder& folder, const DeviceConfig& devices) {
    const std::string& cls = folder.class_name();
    is_xl_ = cls == "StableDiffusionXLPipeline" || cls == "StableDiffusionXLInpaintPipeline";
    folder.expect_component("text_encoder", "CLIPTextModel");
    folder.expect_component("unet", "UNet2DConditionModel");
    folder.expect_component("vae", "AutoencoderKL");
    if (is_xl_) {
        folder.expect_component("text_encoder_2", "CLIPTextModelWithProjection");
        force_zeros_for_empty_prompt_ = folder.index().get_or<bool>("force_zeros_for_empty_prompt", true);
    }
    scheduler_source_ = folder.file("scheduler/scheduler_config.json").string();
    scheduler_config_ = folder.json("scheduler/scheduler_config.json");
    create_scheduler(scheduler_config_, SchedulerType::Auto, scheduler_source_);  // fail at load, not at first call

    const Json unet_config = folder.json("unet/config.json");
    unet_in_channels_ = unet_config.get_or<size_t>("in_channels", 4);
    unet_sample_size_ = unet_config.get_or<size_t>("sample_size", 0);
    time_cond_proj_dim_ = unet_config.get_or<int64_t>("time_cond_proj_dim", -1);

    text_encoder_ = ClipTextEncoder::load(folder, "text_encoder", devices.text_encoder, devices.properties);
    if (is_xl_) text_encoder_2_ = ClipTextEncoder::load(folder, "text_encoder_2", devices.text_encoder, devices.properties);
    unet_ = IrModel::load(folder.file("unet/openvino_model.xml").string(), devices.denoiser, devices.properties);
    vae_ = AutoencoderKL::load(folder, folder.exists("vae_encoder/openvino_model.xml"), devices.vae, devices.properties);
    dedicated_inpainting_ = unet_in_channels_ == 2 * vae_->latent_channels() + 1;
}

bool StableDiffusionPipeline::supports(Task task) const {
    return dedicated_inpainting_ ? task == Task::Inpainting : true;
}

StableDiffusionPipeline::Resolved StableDiffusionPipeline::resolve(Task task, const GenerationParams& p) const {
    if (!supports(task))
        throw invalid_argument(class_name_ + " is a dedicated inpainting model; it cannot run " + task_name(task));
    const bool lcm = time_cond_proj_dim_ >= 0;
    Resolved r{};
    r.task = task;
    r.params = &p;
    r.guidance = p.guidance_scale.value_or(lcm ? 8.5f : is_xl_ ? 5.0f : 7.5f);
    r.steps = static_cast<size_t>(p.num_inference_steps.value_or(lcm ? 4 : 50));
    r.strength = p.strength.value_or(1.0f);
    const size_t default_size = unet_sample_size_ * vae_->scale_factor();
    r.width = p.width ? static_cast<size_t>(*p.width) : default_size;
    r.height = p.height ? static_cast<size_t>(*p.height) : default_size;
    r.do_cfg = r.guidance > 1.0f && !lcm;

    const size_t scale = vae_->scale_factor();
    if (p.num_inference_steps && *p.num_inference_steps < 1) throw invalid_argument("num_inference_steps must be at least 1");
    if (p.num_images_per_prompt < 1) throw invalid_argument("num_images_per_prompt must be at least 1");
    r.batch = static_cast<size_t>(p.num_images_per_prompt);
    if ((p.width && *p.width <= 0) || (p.height && *p.height <= 0)) throw invalid_argument("width and height must be positive");
    if (r.width == 0 || r.height == 0) throw invalid_argument("width and height must be given: the UNet config has no sample_size");
    if (r.width % scale || r.height % scale)
        throw invalid_argument("width and height must be divisible by " + std::to_string(scale) + " (the VAE scale factor); got " +
                               std::to_string(r.width) + "x" + std::to_string(r.height));
    if (!std::isfinite(r.guidance)) throw invalid_argument("guidance_scale must be a finite number");
    if (task == Task::Text2Image && r.strength != 1.0f) throw invalid_argument("strength applies to image-to-image and inpainting only");
    if (r.strength < 0.0f || r.strength > 1.0f) throw invalid_argument("strength must be between 0 and 1");
    if (p.prompt_3 || p.negative_prompt_3) throw invalid_argument("prompt_3 and negative_prompt_3 apply to Stable Diffusion 3 only");
    if (!is_xl_ && (p.prompt_2 || p.negative_prompt_2))
        throw invalid_argument("prompt_2 and negative_prompt_2 apply to SDXL, SD3 and FLUX models only");
    if (p.max_sequence_length) throw invalid_argument("max_sequence_length applies to Stable Diffusion 3 and FLUX only");
    if ((p.negative_prompt || p.negative_prompt_2) && !r.do_cfg)
        throw invalid_argument(lcm ? "LCM models do not use a negative prompt"
                                   : "a negative prompt needs guidance_scale > 1");
    return r;
}

StableDiffusionPipeline::UNetConditioning StableDiffusionPipeline::encode_prompts(const Resolved& r) const {
    const GenerationParams& p = *r.params;
    const auto outputs = text_encoder_->encode(p.prompt, p.negative_prompt.value_or(""), r.do_cfg);
    // last_hidden_state, rows [negative x N, positive x N]
    return {{{"encoder_hidden_states", repeat_rows(outputs[0], r.batch)}}};
}

StableDiffusionPipeline::UNetConditioning StableDiffusionPipeline::encode_prompts_xl(const Resolved& r) const {
    const GenerationParams& p = *r.params;
    // CLIP-G (with projection) reads `prompt`; CLIP-L reads `prompt_2`.
    const std::string p1 = p.prompt, p2 = p.prompt_2.value_or(p.prompt);
    const std::string n1 = p.negative_prompt.value_or(""), n2 = p.negative_prompt_2.value_or(n1);
    const bool force_zeros = !p.negative_prompt && force_zeros_for_empty_prompt_;
    const bool encode_negative = !force_zeros && r.do_cfg;

    const auto out_2 = text_encoder_2_->encode(p1, n1, encode_negative);
    const auto out_1 = text_encoder_->encode(p2, n2, encode_negative);
    ov::Tensor hidden = concat_last_dim(out_1.at(text_encoder_->penultimate_hidden_index()),
                                        out_2.at(text_encoder_2_->penultimate_hidden_index()));
    ov::Tensor pooled = out_2.at(0);  // text_embeds
    if (r.do_cfg && !encode_negative) {
        hidden = stack_rows(zeros_like_rows(hidden, 1), hidden);
        pooled = stack_rows(zeros_like_rows(pooled, 1), pooled);
    }
    const size_t rows = hidden.get_shape()[0];
    ov::Tensor time_ids(ov::element::f32, ov::Shape{rows, 6});
    const float w = static_cast<float>(r.width), h = static_cast<float>(r.height);
    for (size_t i = 0; i < rows; ++i) {
        const float row[6] = {w, h, 0.0f, 0.0f, w, h};  // width first, as the oracle orders it
        std::copy_n(row, 6, time_ids.data<float>() + i * 6);
    }
    return {{{"encoder_hidden_states", repeat_rows(hidden, r.batch)},
             {"text_embeds", repeat_rows(pooled, r.batch)},
             {"time_ids", repeat_rows(time_ids, r.batch)}}};
}

GenerationResult StableDiffusionPipeline::generate(Task task, const GenerationParams& params, const ImageInputs& images,
                                                   const GenerationControl& control) const {
    const auto start = Clock::now();
    const Resolved r = resolve(task, params);
    if (task != Task::Text2Image || images.image || images.mask)
        throw invalid_argument(std::string(task_name(task)) + " is not available in this build yet");

    std::unique_ptr<Scheduler> scheduler;
    try {
        scheduler = create_scheduler(scheduler_config_, params.scheduler, scheduler_source_);
        scheduler->set_timesteps(r.steps, r.strength);
    } catch (const std::invalid_argument& e) {
        throw invalid_argument(e.what());
    }
    const std::vector<int64_t> timesteps = scheduler->timesteps();

    GenerationResult result;
    result.width = r.width;
    result.height = r.height;
    result.seed = params.rng_seed;
    result.scheduler = scheduler_type_name(scheduler->type());

    auto t0 = Clock::now();
    UNetConditioning conditioning = is_xl_ ? encode_prompts_xl(r) : encode_prompts(r);
    if (time_cond_proj_dim_ >= 0)
        conditioning.inputs.push_back({"timestep_cond", guidance_embedding(r.guidance, static_cast<size_t>(time_cond_proj_dim_))});
    result.metrics.text_encode_ms = ms_since(t0);

    // Initial latent: N(0,1) noise drawn in C order, scaled by the scheduler's initial sigma.
    RandomGenerator rng(static_cast<uint32_t>(params.rng_seed));
    const size_t channels = vae_->latent_channels();
    const ov::Shape latent_shape{r.batch, channels, r.height / vae_->scale_factor(), r.width / vae_->scale_factor()};
    ov::Tensor latent(ov::element::f32, latent_shape);
    const size_t count = latent.get_size();
    rng.fill_normal(latent.data<float>(), count);
    const float init_sigma = scheduler->init_noise_sigma();
    for (size_t i = 0; i < count; ++i) latent.data<float>()[i] *= init_sigma;

    const size_t cfg_rows = r.do_cfg ? 2 : 1;
    ov::Tensor unet_sample(ov::element::f32, ov::Shape{cfg_rows * r.batch, channels, latent_shape[2], latent_shape[3]});
    auto unet = unet_->borrow();
    for (const auto& input : conditioning.inputs) unet->set_tensor(input.name, input.tensor);
    const auto timestep_port = unet_->compiled().input("timestep");
    ov::Tensor timestep(timestep_port.get_element_type(), ov::Shape{1});
    unet->set_tensor("sample", unet_sample);
    unet->set_tensor(timestep_port, timestep);

    ov::Tensor denoised = latent;
    std::vector<float> guided(count);
    for (size_t i = 0; i < timesteps.size(); ++i) {
        if (control.cancelled && control.cancelled->load()) {
            result.stopped = true;
            break;
        }
        const auto step_start = Clock::now();
        for (size_t row = 0; row < cfg_rows; ++row)
            std::memcpy(unet_sample.data<float>() + row * count, latent.data<float>(), count * sizeof(float));
        scheduler->scale_model_input(unet_sample.data<float>(), unet_sample.get_size(), i);
        if (timestep.get_element_type() == ov::element::i64) timestep.data<int64_t>()[0] = timesteps[i];
        else if (timestep.get_element_type() == ov::element::f32) timestep.data<float>()[0] = static_cast<float>(timesteps[i]);
        else throw EngineError(ErrorCode::UnsupportedModel, "UNet timestep input must be i64 or f32");

        const auto unet_start = Clock::now();
        try {
            unet->infer();
        } catch (const std::exception& e) {
            throw EngineError(ErrorCode::Runtime, std::string("UNet inference failed: ") + e.what());
        }
        result.metrics.denoiser_ms.push_back(ms_since(unet_start));
        const float* prediction = unet->get_output_tensor(0).data<const float>();
        if (r.do_cfg) {
            const float* uncond = prediction;
            const float* cond = prediction + count;
            for (size_t k = 0; k < count; ++k) guided[k] = uncond[k] + r.guidance * (cond[k] - uncond[k]);
        } else {
            std::copy_n(prediction, count, guided.begin());
        }
        StepResult step = scheduler->step(guided.data(), latent.data<float>(), count, i, rng);
        std::copy(step.latent.begin(), step.latent.end(), latent.data<float>());
        if (step.has_denoised) {
            denoised = ov::Tensor(ov::element::f32, latent_shape);
            std::copy(step.denoised.begin(), step.denoised.end(), denoised.data<float>());
        } else {
            denoised = latent;
        }
        result.metrics.step_ms.push_back(ms_since(step_start));
        result.steps = i + 1;
        if (control.on_step && control.on_step(i, timesteps.size(), denoised)) {
            result.stopped = true;
            break;
        }
    }
    if (!result.stopped) {
        t0 = Clock::now();
        result.images = vae_->decode(denoised);
        result.metrics.vae_decode_ms = ms_since(t0);
    }
    result.metrics.total_ms = ms_since(start);
    return result;
}

}  // namespace ovd
