#include "pipelines/stable_diffusion_pipeline.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "base/errors.hpp"
#include "base/random_generator.hpp"
#include "base/tensor_ops.hpp"
#include "models/deepcache_unet.hpp"
#include "models/image_processor.hpp"
#include "pipelines/denoising_loop.hpp"
#include "pipelines/resolved_params.hpp"

namespace ovd {
namespace {

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

// The common resolution, plus what only UNet models decide.
struct StableDiffusionPipeline::Resolved : ResolvedParams {
    std::vector<AppliedAdapter> adapters;
    bool do_cfg = false;
    size_t deepcache_interval = 1;  // 1: every call runs the whole UNet
};

struct StableDiffusionPipeline::UNetConditioning {
    std::vector<NamedTensor> inputs;  // encoder_hidden_states (+ text_embeds, time_ids, timestep_cond)
};

StableDiffusionPipeline::StableDiffusionPipeline(const ModelFolder& folder, const LoadConfig& load_config) {
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

    // Static shapes (the oracle's reshape): CLIP [bm, 77], the UNet's batch N x bm at the latent size,
    // the VAE N images. bm is 2 with classifier-free guidance, else 1.
    static_shape_ = load_config.static_shape;
    const size_t scale = AutoencoderKL::scale_factor_of(folder);
    size_t cfg_rows = 0;  // 0: dynamic shapes
    if (static_shape_) {
        check_static_shape(*static_shape_, scale, "the VAE scale factor");
        // Without a guidance scale, the text-to-image default decides.
        static_cfg_ = static_shape_->guidance_scale.value_or(is_xl_ ? 5.0f : 7.5f) > 1.0f && time_cond_proj_dim_ < 0;
        cfg_rows = static_cfg_ ? 2 : 1;
    }
    adapters_ = std::make_unique<AdapterSet>(load_config.adapters, load_config.lora_mode);
    AdapterSet* lora = adapters_->empty() ? nullptr : adapters_.get();
    text_encoder_ = ClipTextEncoder::load(folder, "text_encoder", load_config.text_encoder, load_config.properties, lora,
                                          is_xl_ ? "lora_te1" : "lora_te", cfg_rows);
    if (is_xl_)
        text_encoder_2_ =
            ClipTextEncoder::load(folder, "text_encoder_2", load_config.text_encoder, load_config.properties, lora, "lora_te2", cfg_rows);
    const std::string unet_xml = folder.file("unet/openvino_model.xml").string();
    IrModel::Rewrite rewrite;
    std::shared_ptr<ov::Model> shallow_unet;
    if (static_shape_ || lora || load_config.deepcache_branch)
        rewrite = [&](const std::shared_ptr<ov::Model>& unet_model) {
            if (static_shape_) {
                const int64_t rows = static_cast<int64_t>(cfg_rows) * static_shape_->num_images_per_prompt;
                const int64_t h = static_shape_->height / static_cast<int64_t>(scale),
                              w = static_shape_->width / static_cast<int64_t>(scale);
                const int64_t context = static_cast<int64_t>(text_encoder_->context_length());
                reshape_inputs(
                    unet_model,
                    [&](const std::string& name, ov::PartialShape shape) -> std::optional<ov::PartialShape> {
                        if (shape.rank().is_dynamic()) return std::nullopt;
                        if (name == "sample" && shape.size() == 4) return ov::PartialShape{rows, shape[1], h, w};
                        if (name == "timestep" && shape.size() == 1) return ov::PartialShape{1};
                        if (name == "encoder_hidden_states" && shape.size() == 3) return ov::PartialShape{rows, context, shape[2]};
                        if ((name == "text_embeds" || name == "time_ids") && shape.size() == 2) return ov::PartialShape{rows, shape[1]};
                        // LCM's guidance embedding: one row for the whole batch, as it is fed. (The oracle gives it
                        // N x bm rows, which its [1, d] tensor cannot fill for N > 1.)
                        if (name == "timestep_cond" && shape.size() == 2) return ov::PartialShape{1, shape[1]};
                        return std::nullopt;
                    },
                    unet_xml);
            }
            if (lora) unet_lora_ = lora->prepare(unet_model, "lora_unet");
            // Last: the shallow graph keeps the static shapes and the LoRA states.
            if (load_config.deepcache_branch) shallow_unet = cut_deepcache_graphs(unet_model, *load_config.deepcache_branch);
        };
    unet_ = IrModel::load(unet_xml, load_config.denoiser, load_config.properties, rewrite);
    if (shallow_unet)
        unet_shallow_ = IrModel::compile(shallow_unet, load_config.denoiser, load_config.properties, "UNet (DeepCache shallow part)");
    adapter_report_ = adapters_->report();
    vae_ = AutoencoderKL::load(folder, folder.exists("vae_encoder/openvino_model.xml"), load_config.vae, load_config.properties,
                               vae_static_images(static_shape_));
    dedicated_inpainting_ = unet_in_channels_ == 2 * vae_->latent_channels() + 1;
}

bool StableDiffusionPipeline::supports(Task task) const { return dedicated_inpainting_ ? task == Task::Inpainting : true; }

CallShape StableDiffusionPipeline::validate(Task task, const GenerationParams& params, const ImageInputs& images) const {
    return call_shape(resolve(task, params, images));
}

StableDiffusionPipeline::Resolved StableDiffusionPipeline::resolve(Task task, const GenerationParams& p, const ImageInputs& images) const {
    if (!supports(task)) throw invalid_argument(class_name_ + " is a dedicated inpainting model; it cannot run " + task_name(task));
    if (is_flow_matching(p.scheduler)) {
        std::string names;
        for (const std::string& name : scheduler_names_like(SchedulerType::DDIM)) names += (names.empty() ? "" : ", ") + name;
        throw invalid_param(
            "scheduler", std::string("scheduler ") + scheduler_type_name(p.scheduler) + " is for SD3 and FLUX; UNet models take " + names);
    }
    const bool lcm = time_cond_proj_dim_ >= 0;
    const size_t scale = vae_->scale_factor();
    FamilyDefaults defaults;
    defaults.guidance_scale = lcm ? 8.5f : is_xl_ ? (task == Task::Inpainting ? 7.5f : 5.0f) : 7.5f;
    defaults.steps = lcm ? 4 : 50;
    defaults.strength = task == Task::Image2Image ? (is_xl_ ? 0.3f : 0.8f) : task == Task::Inpainting && is_xl_ ? 0.9999f : 1.0f;
    // Image-to-image follows the input's size (rounded down to the VAE scale); the others the model's.
    defaults.width = defaults.height = unet_sample_size_ * scale;
    defaults.image2image_size_from_image = true;
    defaults.static_shape = static_shape_ ? &*static_shape_ : nullptr;
    defaults.unet_family = true;
    Resolved r;
    static_cast<ResolvedParams&>(r) = resolve_common(task, p, images, defaults, scale, "the VAE scale factor");
    r.do_cfg = r.guidance > 1.0f && !lcm;
    check_static_guidance(defaults.static_shape, static_cfg_, r.do_cfg, r.guidance);

    if (p.taylorseer) throw invalid_param("taylorseer", "taylorseer applies to Stable Diffusion 3 and FLUX only");
    if (p.prompt_3 || p.negative_prompt_3)
        throw invalid_param(p.prompt_3 ? "prompt_3" : "negative_prompt_3",
                            "prompt_3 and negative_prompt_3 apply to Stable Diffusion 3 only");
    if (!is_xl_ && (p.prompt_2 || p.negative_prompt_2))
        throw invalid_param(p.prompt_2 ? "prompt_2" : "negative_prompt_2",
                            "prompt_2 and negative_prompt_2 apply to SDXL, SD3 and FLUX models only");
    if (p.max_sequence_length)
        throw invalid_param("max_sequence_length", "max_sequence_length applies to Stable Diffusion 3 and FLUX only");
    if (r.guidance_rescale > 0 && !r.do_cfg)
        throw invalid_param("guidance_rescale", lcm ? "LCM models do not use guidance_rescale (they run without classifier-free guidance)"
                                                    : "guidance_rescale needs guidance_scale > 1");
    if ((p.negative_prompt || p.negative_prompt_2) && !r.do_cfg)
        throw invalid_param(p.negative_prompt ? "negative_prompt" : "negative_prompt_2",
                            lcm ? "LCM models do not use a negative prompt" : "a negative prompt needs guidance_scale > 1");
    r.adapters = adapters_->choose(p.adapters);
    r.deepcache_interval = static_cast<size_t>(p.deepcache_interval.value_or(1));
    if (r.deepcache_interval > 1 && !unet_shallow_)
        throw invalid_param("deepcache_interval",
                            "this model was loaded without DeepCache (load option deepcache; server: --deepcache_interval)");
    return r;
}

StableDiffusionPipeline::UNetConditioning StableDiffusionPipeline::encode_prompts(const Resolved& r, GenerationMetrics& metrics) const {
    const GenerationParams& p = *r.params;
    const auto t0 = Clock::now();
    const auto outputs = text_encoder_->encode(p.prompt, p.negative_prompt.value_or(""), r.do_cfg, &r.adapters, &metrics.adapter_apply_ms);
    metrics.text_encoder_ms["text_encoder"] = ms_since(t0);
    // last_hidden_state, rows [negative x N, positive x N]
    return {{{"encoder_hidden_states", repeat_rows(outputs[0], r.batch)}}};
}

StableDiffusionPipeline::UNetConditioning StableDiffusionPipeline::encode_prompts_xl(const Resolved& r, GenerationMetrics& metrics) const {
    const GenerationParams& p = *r.params;
    // CLIP-G (with projection) reads `prompt`; CLIP-L reads `prompt_2`.
    const std::string p1 = p.prompt, p2 = p.prompt_2.value_or(p.prompt);
    const std::string n1 = p.negative_prompt.value_or(""), n2 = p.negative_prompt_2.value_or(n1);
    const bool force_zeros = !p.negative_prompt && force_zeros_for_empty_prompt_;
    const bool encode_negative = !force_zeros && r.do_cfg;

    auto t0 = Clock::now();
    const auto out_2 = text_encoder_2_->encode(p1, n1, encode_negative, &r.adapters, &metrics.adapter_apply_ms);
    metrics.text_encoder_ms["text_encoder_2"] = ms_since(t0);
    t0 = Clock::now();
    const auto out_1 = text_encoder_->encode(p2, n2, encode_negative, &r.adapters, &metrics.adapter_apply_ms);
    metrics.text_encoder_ms["text_encoder"] = ms_since(t0);
    ov::Tensor hidden =
        concat_last_dim(out_1.at(text_encoder_->penultimate_hidden_index()), out_2.at(text_encoder_2_->penultimate_hidden_index()));
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

// The starting latent and what inpainting needs during the loop.
struct StableDiffusionPipeline::InitialState {
    ov::Tensor latent;               // [N,C,h,w]
    ov::Tensor noise;                // the initial noise, reused by the inpainting blend
    ov::Tensor image_latent;         // [1,C,h,w] encoded input image (image-to-image, inpainting)
    ov::Tensor latent_mask;          // [1,1,h,w] in {0,1}, inpainting
    ov::Tensor masked_image_latent;  // [1,C,h,w], dedicated inpainting models
};

StableDiffusionPipeline::InitialState StableDiffusionPipeline::prepare_latents(const Resolved& r, const ImageInputs& images,
                                                                               const Scheduler& scheduler, int64_t first_timestep,
                                                                               RandomGenerator& rng, GenerationMetrics& metrics) const {
    const size_t scale = vae_->scale_factor(), channels = vae_->latent_channels();
    const ov::Shape shape{r.batch, channels, r.height / scale, r.width / scale};
    InitialState state;
    ov::Tensor processed_image;
    const bool strength_max = r.strength == 1.0f;
    // Random numbers are drawn in the oracle's order: image encode, noise, masked-image encode.
    if (images.image) {
        processed_image = normalize_image(resize_image_u8(images.image, r.height, r.width));
        if (r.task == Task::Image2Image || !dedicated_inpainting_ || !strength_max) {
            const auto t0 = Clock::now();
            state.image_latent = vae_->encode(processed_image, rng);
            metrics.vae_encode_ms += ms_since(t0);
        }
    }
    state.noise = ov::Tensor(ov::element::f32, shape);
    rng.fill_normal(state.noise.data<float>(), state.noise.get_size());
    const size_t count = state.noise.get_size();
    if (r.task == Task::Text2Image || (r.task == Task::Inpainting && strength_max)) {
        state.latent = ov::Tensor(ov::element::f32, shape);
        const float sigma = scheduler.init_noise_sigma();
        for (size_t i = 0; i < count; ++i) state.latent.data<float>()[i] = state.noise.data<float>()[i] * sigma;
    } else {
        state.latent = repeat_rows(state.image_latent, r.batch);
        scheduler.add_noise(state.latent.data<float>(), state.noise.data<const float>(), count, first_timestep);
    }
    if (r.task == Task::Inpainting) {
        const ov::Tensor mask_condition = check_mask_not_empty(binarize_mask(resize_image_u8(images.mask, r.height, r.width)));
        const float* m = mask_condition.data<const float>();
        state.latent_mask = downscale_mask(mask_condition, shape[2], shape[3]);
        if (dedicated_inpainting_) {
            // The image with the repainted area blacked out (0 in [-1,1] space), encoded.
            ov::Tensor masked(ov::element::f32, processed_image.get_shape());
            const size_t plane = r.height * r.width;
            for (size_t c = 0; c < 3; ++c)
                for (size_t p = 0; p < plane; ++p)
                    masked.data<float>()[c * plane + p] = m[p] < 0.5f ? processed_image.data<const float>()[c * plane + p] : 0.0f;
            const auto t0 = Clock::now();
            state.masked_image_latent = vae_->encode(masked, rng);
            metrics.vae_encode_ms += ms_since(t0);
        }
    }
    return state;
}

GenerationResult StableDiffusionPipeline::run(Task task, const GenerationParams& params, const ImageInputs& images,
                                              const GenerationControl& control) const {
    const auto start = Clock::now();
    const Resolved r = resolve(task, params, images);

    const std::unique_ptr<Scheduler> scheduler = scheduler_for_call(scheduler_config_, params.scheduler, scheduler_source_);
    const std::vector<int64_t> timesteps = timesteps_for_call([&] {
        scheduler->set_timesteps(r.steps, r.strength);
        return scheduler->timesteps();
    });

    GenerationResult result = result_for_call(r, scheduler->type());

    auto t0 = Clock::now();
    UNetConditioning conditioning = is_xl_ ? encode_prompts_xl(r, result.metrics) : encode_prompts(r, result.metrics);
    if (time_cond_proj_dim_ >= 0)
        conditioning.inputs.push_back({"timestep_cond", guidance_embedding(r.guidance, static_cast<size_t>(time_cond_proj_dim_))});
    result.metrics.text_encode_ms = ms_since(t0);

    RandomGenerator rng(static_cast<uint32_t>(params.rng_seed));
    InitialState state = prepare_latents(r, images, *scheduler, timesteps.front(), rng, result.metrics);
    ov::Tensor& latent = state.latent;
    const ov::Shape latent_shape = latent.get_shape();
    const size_t count = latent.get_size(), channels = latent_shape[1], plane = latent_shape[2] * latent_shape[3];

    // UNet input: [latent x cfg rows] (scaled), and for dedicated inpainting models per row
    // [latent (C) | mask (1) | masked image latent (C)] along channels.
    const size_t cfg_rows = r.do_cfg ? 2 : 1, unet_rows = cfg_rows * r.batch;
    auto unet = unet_->borrow();
    if (unet_lora_) result.metrics.adapter_apply_ms += unet_lora_->apply(unet, r.adapters);
    for (const auto& input : conditioning.inputs) unet.write_input(input.name, input.tensor);
    // The sample and the timestep are filled in the request's own input tensors at each step.
    ov::Tensor unet_sample = unet.input_buffer("sample", ov::Shape{unet_rows, unet_in_channels_, latent_shape[2], latent_shape[3]});
    ov::Tensor latent_cfg = dedicated_inpainting_
                                ? ov::Tensor(ov::element::f32, ov::Shape{unet_rows, channels, latent_shape[2], latent_shape[3]})
                                : unet_sample;
    ov::Tensor timestep = unet.input_buffer("timestep", ov::Shape{1});
    // DeepCache: the shallow UNet's request, with the same conditioning and adapters.
    std::optional<InferRequestPool::Lease> shallow;
    if (r.deepcache_interval > 1) {
        shallow.emplace(unet_shallow_->borrow());
        if (unet_lora_) result.metrics.adapter_apply_ms += unet_lora_->apply(*shallow, r.adapters);
        for (const auto& input : conditioning.inputs) shallow->write_input(input.name, input.tensor);
    }
    const bool blend_with_image = task == Task::Inpainting && !dedicated_inpainting_;

    ov::Tensor denoised = latent;
    std::vector<float> guided(count);
    DenoisingLoop loop;
    loop.num_steps = timesteps.size();
    // PNDM's warm-up call and Heun's predictor calls only prepare the step that the next call finishes.
    loop.completes_step = [&](size_t i) { return scheduler->completes_step(i); };
    loop.step = [&](size_t i) {
        for (size_t row = 0; row < cfg_rows; ++row)
            std::memcpy(latent_cfg.data<float>() + row * count, latent.data<float>(), count * sizeof(float));
        scheduler->scale_model_input(latent_cfg.data<float>(), latent_cfg.get_size(), i);
        if (dedicated_inpainting_) {
            float* out = unet_sample.data<float>();
            for (size_t row = 0; row < unet_rows; ++row) {
                out = std::copy_n(latent_cfg.data<const float>() + row * channels * plane, channels * plane, out);
                out = std::copy_n(state.latent_mask.data<const float>(), plane, out);
                out = std::copy_n(state.masked_image_latent.data<const float>(), channels * plane, out);
            }
        }
        if (timestep.get_element_type() == ov::element::i64)
            timestep.data<int64_t>()[0] = timesteps[i];
        else if (timestep.get_element_type() == ov::element::f32)
            timestep.data<float>()[0] = static_cast<float>(timesteps[i]);
        else
            throw EngineError(ErrorCode::UnsupportedModel, "UNet timestep input must be i64 or f32");

        const float* prediction = nullptr;
        if (shallow && i % r.deepcache_interval != 0) {
            shallow->write_input("sample", unet_sample);
            shallow->write_input("timestep", timestep);
            infer_denoiser(**shallow, result, "UNet (DeepCache shallow part)");
            prediction = (*shallow)->get_output_tensor(0).data<const float>();
        } else {
            infer_denoiser(*unet, result, "UNet");
            prediction = unet->get_output_tensor(0).data<const float>();
            if (shallow) shallow->write_input(kDeepCacheFeature, unet->get_tensor(kDeepCacheFeature));
        }
        apply_guidance(prediction, count, r.do_cfg, r.guidance, guided.data());
        if (r.guidance_rescale > 0) rescale_guidance(prediction + count, count, r.batch, r.guidance_rescale, guided.data());
        StepResult step = scheduler->step(guided.data(), latent.data<float>(), count, i, rng);
        std::copy(step.latent.begin(), step.latent.end(), latent.data<float>());
        if (blend_with_image) {
            // Outside the mask, put back the input image noised to the next step's level.
            ov::Tensor noised = repeat_rows(state.image_latent, r.batch);
            if (i + 1 < timesteps.size())
                scheduler->add_noise(noised.data<float>(), state.noise.data<const float>(), count, timesteps[i + 1]);
            blend_outside_mask(latent.data<float>(), noised.data<const float>(), state.latent_mask.data<const float>(), count, plane);
        }
        if (step.has_denoised) {
            denoised = ov::Tensor(ov::element::f32, latent_shape);
            std::copy(step.denoised.begin(), step.denoised.end(), denoised.data<float>());
        } else {
            denoised = latent;
        }
    };
    loop.latent_for_callback = [&] { return denoised; };
    finish_generation(run_denoising_loop(loop, control, result), [&] { return vae_->decode(denoised); }, start, result);
    return result;
}

}  // namespace ovd
