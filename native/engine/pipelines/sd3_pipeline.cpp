#include "pipelines/sd3_pipeline.hpp"

#include <algorithm>

#include "base/errors.hpp"
#include "base/random_generator.hpp"
#include "base/tensor_ops.hpp"
#include "models/image_processor.hpp"
#include "pipelines/denoising_loop.hpp"
#include "pipelines/resolved_params.hpp"
#include "pipelines/taylorseer_cache.hpp"

namespace ovd {
namespace {

constexpr int64_t kDefaultMaxSequenceLength = 256;

}  // namespace

struct StableDiffusion3Pipeline::Conditioning {
    ov::Tensor encoder_hidden_states;  // [bm*N, 77 + T5 length, joint_attention_dim]
    ov::Tensor pooled_projections;     // [bm*N, D1 + D2]
};

StableDiffusion3Pipeline::StableDiffusion3Pipeline(const ModelFolder& folder, const LoadConfig& load_config) {
    inpainting_only_ = folder.class_name() == "StableDiffusion3InpaintPipeline";
    folder.expect_component("text_encoder", "CLIPTextModelWithProjection");
    folder.expect_component("text_encoder_2", "CLIPTextModelWithProjection");
    const std::string t5_class = folder.component_class("text_encoder_3");
    if (!t5_class.empty()) folder.expect_component("text_encoder_3", "T5EncoderModel");
    folder.expect_component("transformer", "SD3Transformer2DModel");
    folder.expect_component("vae", "AutoencoderKL");

    scheduler_source_ = folder.file("scheduler/scheduler_config.json").string();
    scheduler_config_ = folder.json("scheduler/scheduler_config.json");
    if (create_scheduler(scheduler_config_, SchedulerType::Auto, scheduler_source_)->type() != SchedulerType::FlowMatchEulerDiscrete)
        throw EngineError(ErrorCode::UnsupportedModel, scheduler_source_ + ": Stable Diffusion 3 needs FlowMatchEulerDiscreteScheduler");

    const Json config = folder.json("transformer/config.json");
    sample_size_ = config.get_or<size_t>("sample_size", 128);
    patch_size_ = config.get_or<size_t>("patch_size", 2);
    in_channels_ = config.get_or<size_t>("in_channels", 16);
    joint_attention_dim_ = config.get_or<size_t>("joint_attention_dim", 4096);

    // Static shapes (the oracle's reshape): CLIP [bm, 77], T5 [bm, 256] (the default max_sequence_length),
    // the transformer's batch N x bm at the latent size with 77 + 256 tokens (77 x 2 without T5), the
    // VAE N images. bm is 2 with classifier-free guidance, else 1.
    static_shape_ = load_config.static_shape;
    const size_t scale = AutoencoderKL::scale_factor_of(folder);
    size_t cfg_rows = 0;  // 0: dynamic shapes
    if (static_shape_) {
        check_static_shape(
            *static_shape_, scale * patch_size_,
            "the VAE scale factor " + std::to_string(scale) + " times the transformer patch size " + std::to_string(patch_size_));
        static_cfg_ = static_shape_->guidance_scale.value_or(7.0f) > 1.0f;
        cfg_rows = static_cfg_ ? 2 : 1;
    }
    text_encoder_ = ClipTextEncoder::load(folder, "text_encoder", load_config.text_encoder, load_config.properties, nullptr, {}, cfg_rows);
    text_encoder_2_ =
        ClipTextEncoder::load(folder, "text_encoder_2", load_config.text_encoder, load_config.properties, nullptr, {}, cfg_rows);
    if (!t5_class.empty())
        t5_ = T5Encoder::load(folder, "text_encoder_3", load_config.text_encoder, load_config.properties, cfg_rows,
                              kDefaultMaxSequenceLength);
    const std::string transformer_xml = folder.file("transformer/openvino_model.xml").string();
    // LoRA, as the oracle: the transformer only, keys as they are in the file, prefix "transformer".
    adapters_ = std::make_unique<AdapterSet>(load_config.adapters, load_config.lora_mode, LoraNaming::Raw);
    IrModel::Rewrite rewrite;
    if (static_shape_ || !adapters_->empty())
        rewrite = [&](const std::shared_ptr<ov::Model>& transformer) {
            if (static_shape_) {
                const int64_t rows = static_cast<int64_t>(cfg_rows) * static_shape_->num_images_per_prompt;
                const int64_t h = static_shape_->height / static_cast<int64_t>(scale),
                              w = static_shape_->width / static_cast<int64_t>(scale);
                const int64_t clip_length = static_cast<int64_t>(text_encoder_->context_length());
                const int64_t tokens = clip_length + (t5_ ? kDefaultMaxSequenceLength : clip_length);
                reshape_inputs(
                    transformer,
                    [&](const std::string& name, ov::PartialShape shape) -> std::optional<ov::PartialShape> {
                        if (shape.rank().is_dynamic()) return std::nullopt;
                        if (name == "hidden_states" && shape.size() == 4) return ov::PartialShape{rows, shape[1], h, w};
                        if (name == "encoder_hidden_states" && shape.size() == 3) return ov::PartialShape{rows, tokens, shape[2]};
                        if (name == "pooled_projections" && shape.size() == 2) return ov::PartialShape{rows, shape[1]};
                        if (name == "timestep" && shape.size() == 1) return ov::PartialShape{1};
                        return std::nullopt;
                    },
                    transformer_xml);
            }
            if (!adapters_->empty()) transformer_lora_ = adapters_->prepare(transformer, "transformer");
        };
    transformer_ = IrModel::load(transformer_xml, load_config.denoiser, load_config.properties, rewrite);
    adapter_report_ = adapters_->report();
    vae_ = AutoencoderKL::load(folder, folder.exists("vae_encoder/openvino_model.xml"), load_config.vae, load_config.properties,
                               vae_static_images(static_shape_));
}

bool StableDiffusion3Pipeline::supports(Task task) const {
    if (inpainting_only_) return task == Task::Inpainting;
    return task == Task::Text2Image || vae_->has_encoder();
}

CallShape StableDiffusion3Pipeline::validate(Task task, const GenerationParams& params, const ImageInputs& images) const {
    bool do_cfg = false;
    size_t max_sequence_length = 0;
    return call_shape(resolve(task, params, images, do_cfg, max_sequence_length));
}

ResolvedParams StableDiffusion3Pipeline::resolve(Task task, const GenerationParams& p, const ImageInputs& images, bool& do_cfg,
                                                 size_t& max_sequence_length) const {
    if (!supports(task))
        throw invalid_argument(inpainting_only_ ? class_name_ + " is an inpainting pipeline; it cannot run " + std::string(task_name(task))
                                                : class_name_ + " has no vae_encoder; it cannot run " + std::string(task_name(task)));
    const size_t scale = vae_->scale_factor();
    FamilyDefaults defaults;
    defaults.guidance_scale = 7.0f;
    defaults.steps = 28;
    defaults.strength = task == Task::Text2Image ? 1.0f : 0.6f;
    defaults.width = defaults.height = sample_size_ * scale;  // image-to-image too, as the oracle
    defaults.static_shape = static_shape_ ? &*static_shape_ : nullptr;
    const ResolvedParams r = resolve_common(
        task, p, images, defaults, scale * patch_size_,
        "the VAE scale factor " + std::to_string(scale) + " times the transformer patch size " + std::to_string(patch_size_));
    do_cfg = r.guidance > 1.0f;
    check_static_guidance(defaults.static_shape, static_cfg_, do_cfg, r.guidance);
    if ((p.negative_prompt || p.negative_prompt_2 || p.negative_prompt_3) && !do_cfg)
        throw invalid_param((p.negative_prompt     ? "negative_prompt"
                             : p.negative_prompt_2 ? "negative_prompt_2"
                                                   : "negative_prompt_3"),
                            "a negative prompt needs guidance_scale > 1");
    check_max_sequence_length(p, 1, 512, " (T5's limit)");
    if (!t5_ && (p.prompt_3 || p.negative_prompt_3 || p.max_sequence_length))
        throw invalid_param(p.prompt_3            ? "prompt_3"
                            : p.negative_prompt_3 ? "negative_prompt_3"
                                                  : "max_sequence_length",
                            "this Stable Diffusion 3 model has no T5 encoder (text_encoder_3), so prompt_3, negative_prompt_3 and "
                            "max_sequence_length have no effect; leave them unset");
    if (task != Task::Text2Image && r.batch != 1)
        throw invalid_param("num_images_per_prompt",
                            "Stable Diffusion 3 " + std::string(task_name(task)) + " makes one image per call (num_images_per_prompt = 1)");
    check_flow_match_scheduler(p, "Stable Diffusion 3");
    max_sequence_length = static_cast<size_t>(p.max_sequence_length.value_or(kDefaultMaxSequenceLength));
    if (static_shape_ && t5_ && max_sequence_length != static_cast<size_t>(kDefaultMaxSequenceLength))
        throw invalid_param("max_sequence_length", "this model was reshaped to static shapes with T5 compiled for max_sequence_length " +
                                                       std::to_string(kDefaultMaxSequenceLength) + "; leave it unset or give that; got " +
                                                       std::to_string(max_sequence_length));
    return r;
}

StableDiffusion3Pipeline::Conditioning StableDiffusion3Pipeline::encode_prompts(const ResolvedParams& r, bool do_cfg,
                                                                                size_t max_sequence_length,
                                                                                GenerationMetrics& metrics) const {
    const GenerationParams& p = *r.params;
    const std::string& p1 = p.prompt;
    const std::string p2 = p.prompt_2.value_or(p1), p3 = p.prompt_3.value_or(p1);
    const std::string n1 = p.negative_prompt.value_or(""), n2 = p.negative_prompt_2.value_or(n1), n3 = p.negative_prompt_3.value_or(n1);

    auto t0 = Clock::now();
    const auto out_1 = text_encoder_->encode(p1, n1, do_cfg);
    metrics.text_encoder_ms["text_encode"] = ms_since(t0);
    t0 = Clock::now();
    const auto out_2 = text_encoder_2_->encode(p2, n2, do_cfg);
    metrics.text_encoder_ms["text_encode_2"] = ms_since(t0);
    const size_t rows = do_cfg ? 2 : 1;
    ov::Tensor t5_hidden;
    if (t5_) {
        t0 = Clock::now();
        t5_hidden = t5_->encode(p3, n3, do_cfg, max_sequence_length);
        metrics.text_encoder_ms["text_encode_3"] = ms_since(t0);
    } else {
        // Without T5 its part of the sequence is zeros, CLIP-length.
        t5_hidden = ov::Tensor(ov::element::f32, ov::Shape{rows, text_encoder_->context_length(), joint_attention_dim_});
        std::fill_n(t5_hidden.data<float>(), t5_hidden.get_size(), 0.0f);
    }
    // CLIP-L | CLIP-G hidden states, zero-padded to T5's width, then followed by the T5 sequence.
    const ov::Tensor clip =
        concat_last_dim(out_1.at(text_encoder_->penultimate_hidden_index()), out_2.at(text_encoder_2_->penultimate_hidden_index()));
    const ov::Tensor hidden = concat_sequence(fit_last_dim(clip, t5_hidden.get_shape()[2]), t5_hidden);
    const ov::Tensor pooled = concat_last_dim(out_1.at(0), out_2.at(0));  // text_embeds
    return {repeat_rows(hidden, r.batch), repeat_rows(pooled, r.batch)};
}

GenerationResult StableDiffusion3Pipeline::run(Task task, const GenerationParams& params, const ImageInputs& images,
                                               const GenerationControl& control) const {
    const auto start = Clock::now();
    bool do_cfg = false;
    size_t max_sequence_length = 0;
    const ResolvedParams r = resolve(task, params, images, do_cfg, max_sequence_length);
    const std::vector<AppliedAdapter> applied_adapters = adapters_->choose(params.adapters);

    const std::unique_ptr<Scheduler> scheduler =
        scheduler_for_call(scheduler_config_, SchedulerType::FlowMatchEulerDiscrete, scheduler_source_);
    const std::vector<float> timesteps = timesteps_for_call([&] {
        scheduler->set_timesteps(r.steps, r.strength);
        return scheduler->float_timesteps();
    });
    // The cache is sized by the steps actually run (after strength), as the oracle does.
    TaylorSeerCache cache(TaylorSeerCache::config_for(params, task == Task::Text2Image), timesteps.size());

    GenerationResult result = result_for_call(r, scheduler->type());

    auto t0 = Clock::now();
    const Conditioning conditioning = encode_prompts(r, do_cfg, max_sequence_length, result.metrics);
    result.metrics.text_encode_ms = ms_since(t0);

    // Random numbers in the oracle's order: image encode, then the noise.
    RandomGenerator rng(static_cast<uint32_t>(params.rng_seed));
    const size_t scale = vae_->scale_factor();
    const ov::Shape shape{r.batch, in_channels_, r.height / scale, r.width / scale};
    const size_t count = ov::shape_size(shape), plane = shape[2] * shape[3];
    ov::Tensor processed_image, image_latent;
    if (task != Task::Text2Image) {
        processed_image = normalize_image(resize_image_u8(images.image, r.height, r.width));
        t0 = Clock::now();
        image_latent = vae_->encode(processed_image, rng);
        result.metrics.vae_encode_ms += ms_since(t0);
        if (image_latent.get_size() != count)
            throw EngineError(ErrorCode::UnsupportedModel, "the VAE latent channels do not match the transformer's in_channels");
    }
    ov::Tensor noise(ov::element::f32, shape);
    rng.fill_normal(noise.data<float>(), count);
    ov::Tensor latent(ov::element::f32, shape);
    if (task == Task::Text2Image) {
        const float sigma = scheduler->init_noise_sigma();
        for (size_t i = 0; i < count; ++i) latent.data<float>()[i] = noise.data<const float>()[i] * sigma;
    } else {
        std::copy_n(image_latent.data<const float>(), count, latent.data<float>());
        scheduler->scale_noise(latent.data<float>(), noise.data<const float>(), count, timesteps.front());
    }
    ov::Tensor latent_mask;
    if (task == Task::Inpainting) {
        const ov::Tensor mask_condition = check_mask_not_empty(binarize_mask(resize_image_u8(images.mask, r.height, r.width)));
        latent_mask = downscale_mask(mask_condition, shape[2], shape[3]);
    }

    // Transformer inputs: latent x cfg rows ([uncond ; cond]), raw t, the prompts' embeddings.
    const size_t cfg_rows = do_cfg ? 2 : 1;
    auto request = transformer_->borrow();
    if (transformer_lora_) result.metrics.adapter_apply_ms += transformer_lora_->apply(request, applied_adapters);
    ov::Tensor latent_cfg = request.input_buffer("hidden_states", ov::Shape{cfg_rows * r.batch, shape[1], shape[2], shape[3]});
    ov::Tensor timestep = request.input_buffer("timestep", ov::Shape{1});
    request.write_input("encoder_hidden_states", conditioning.encoder_hidden_states);
    request.write_input("pooled_projections", conditioning.pooled_projections);

    std::vector<float> predicted(cache.active() ? latent_cfg.get_size() : 0), guided(count), noised;
    DenoisingLoop loop;
    loop.num_steps = timesteps.size();
    loop.step = [&](size_t i) {
        const float* prediction;
        if (cache.computes(i)) {
            for (size_t row = 0; row < cfg_rows; ++row)
                std::copy_n(latent.data<const float>(), count, latent_cfg.data<float>() + row * count);
            timestep.data<float>()[0] = timesteps[i];
            infer_denoiser(*request, result, "SD3 transformer");
            const ov::Tensor output = request->get_output_tensor(0);
            if (output.get_size() != latent_cfg.get_size())
                throw EngineError(ErrorCode::UnsupportedModel, "the SD3 transformer output does not match its input's shape");
            prediction = output.data<const float>();
            cache.update(i, prediction, output.get_size());
        } else {
            cache.predict(i, predicted.data());
            prediction = predicted.data();
        }
        apply_guidance(prediction, count, do_cfg, r.guidance, guided.data());
        const StepResult step = scheduler->step(guided.data(), latent.data<float>(), count, i, rng);
        std::copy(step.latent.begin(), step.latent.end(), latent.data<float>());
        if (task == Task::Inpainting) {
            // Outside the mask, the input image noised to the next step's level (the last step: the image itself).
            noised.assign(image_latent.data<const float>(), image_latent.data<const float>() + count);
            if (i + 1 < timesteps.size()) {
                scheduler->float_timesteps();  // as the oracle, which re-reads them here
                scheduler->scale_noise(noised.data(), noise.data<const float>(), count, timesteps[i + 1]);
            }
            blend_outside_mask(latent.data<float>(), noised.data(), latent_mask.data<const float>(), count, plane);
        }
    };
    loop.latent_for_callback = [&] { return latent; };
    finish_generation(run_denoising_loop(loop, control, result), [&] { return vae_->decode(latent); }, start, result);
    return result;
}

}  // namespace ovd
