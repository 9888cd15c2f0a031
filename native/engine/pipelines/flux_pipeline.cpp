#include "pipelines/flux_pipeline.hpp"

#include <algorithm>

#include "base/errors.hpp"
#include "base/random_generator.hpp"
#include "base/tensor_ops.hpp"
#include "models/image_processor.hpp"
#include "pipelines/denoising_loop.hpp"
#include "pipelines/flux_latent_packing.hpp"
#include "pipelines/resolved_params.hpp"
#include "pipelines/taylorseer_cache.hpp"

namespace ovd {
namespace {

constexpr int64_t kDefaultMaxSequenceLength = 512;
constexpr size_t kDefaultSampleSize = 128;  // fixed in the oracle, not read from the config

}  // namespace

FluxPipeline::FluxPipeline(const ModelFolder& folder, const LoadConfig& load_config) {
    const std::string& cls = folder.class_name();
    fill_ = cls == "FluxFillPipeline";
    inpainting_only_ = fill_ || cls == "FluxInpaintPipeline";
    folder.expect_component("text_encoder", "CLIPTextModel");
    folder.expect_component("text_encoder_2", "T5EncoderModel");
    folder.expect_component("transformer", "FluxTransformer2DModel");
    folder.expect_component("vae", "AutoencoderKL");

    load_flow_match_scheduler(folder, "FLUX");

    const Json config = folder.json("transformer/config.json");
    in_channels_ = config.get_or<size_t>("in_channels", 64);
    guidance_embeds_ = config.get_or<bool>("guidance_embeds", false);

    // Static shapes (the oracle's reshape): CLIP [1, 77], T5 [1, 512] (the default max_sequence_length),
    // the transformer's batch N with the packed latent's and T5's lengths, the VAE N images. FLUX has
    // no classifier-free guidance, so the guidance scale shapes nothing.
    static_shape_ = load_config.static_shape;
    const size_t scale = AutoencoderKL::scale_factor_of(folder);
    if (static_shape_)
        check_static_shape(*static_shape_, 2 * scale,
                           "twice the VAE scale factor " + std::to_string(scale) + ": FLUX packs 2x2 latent pixels");
    const size_t text_batch = static_shape_ ? 1 : 0;
    // LoRA, as the oracle: the CLIP encoder ("lora_te") and the transformer ("transformer"), with the FLUX
    // key normalization (XLabs, kohya-FLUX, diffusers).
    adapters_ = std::make_unique<AdapterSet>(load_config.adapters, load_config.lora_mode, LoraNaming::Flux);
    AdapterSet* lora = adapters_->empty() ? nullptr : adapters_.get();
    text_encoder_ =
        ClipTextEncoder::load(folder, "text_encoder", load_config.text_encoder, load_config.properties, lora, "lora_te", text_batch);
    t5_ =
        T5Encoder::load(folder, "text_encoder_2", load_config.text_encoder, load_config.properties, text_batch, kDefaultMaxSequenceLength);
    const std::string transformer_xml = folder.file("transformer/openvino_model.xml").string();
    IrModel::Rewrite rewrite;
    if (static_shape_ || lora)
        rewrite = [&](const std::shared_ptr<ov::Model>& transformer) {
            if (static_shape_) {
                const int64_t n = static_shape_->num_images_per_prompt;
                const int64_t seq =
                    (static_shape_->height / static_cast<int64_t>(2 * scale)) * (static_shape_->width / static_cast<int64_t>(2 * scale));
                const int64_t text = kDefaultMaxSequenceLength;
                reshape_inputs(
                    transformer,
                    [&](const std::string& name, ov::PartialShape shape) -> std::optional<ov::PartialShape> {
                        if (shape.rank().is_dynamic()) return std::nullopt;
                        if (name == "hidden_states" && shape.size() == 3) return ov::PartialShape{n, seq, shape[2]};
                        if (name == "encoder_hidden_states" && shape.size() == 3) return ov::PartialShape{n, text, shape[2]};
                        if (name == "pooled_projections" && shape.size() == 2) return ov::PartialShape{n, shape[1]};
                        if (name == "img_ids" && shape.size() == 2) return ov::PartialShape{seq, shape[1]};
                        if (name == "txt_ids" && shape.size() == 2) return ov::PartialShape{text, shape[1]};
                        if (name == "guidance" && shape.size() == 1) return ov::PartialShape{n};
                        if (name == "timestep" && shape.size() == 1) return ov::PartialShape{1};
                        return std::nullopt;
                    },
                    transformer_xml);
            }
            if (lora) transformer_lora_ = lora->prepare(transformer, "transformer");
        };
    transformer_ = IrModel::load(transformer_xml, load_config.denoiser, load_config.properties, rewrite);
    adapter_report_ = adapters_->report();
    vae_ = AutoencoderKL::load(folder, folder.exists("vae_encoder/openvino_model.xml"), load_config.vae, load_config.properties,
                               vae_static_images(static_shape_));

    // The fill transformer reads [latent | masked image latent | mask as scale^2 channels], all packed.
    latent_channels_ = fill_ ? vae_->latent_channels() : in_channels_ / 4;
    const size_t expected = fill_ ? 8 * latent_channels_ + 4 * scale * scale : 4 * vae_->latent_channels();
    if (in_channels_ != expected)
        throw EngineError(ErrorCode::UnsupportedModel,
                          folder.root().string() + "/transformer/config.json: in_channels " + std::to_string(in_channels_) +
                              " does not fit " +
                              (fill_ ? "a FluxFillPipeline" : "a " + cls + " (a fill transformer needs the FluxFillPipeline class)") +
                              " with this VAE; expected " + std::to_string(expected));
}

bool FluxPipeline::supports(Task task) const {
    if (inpainting_only_) return task == Task::Inpainting && vae_->has_encoder();
    return task == Task::Text2Image || vae_->has_encoder();
}

ov::Tensor FluxPipeline::decode(const ov::Tensor& latent) const {
    if (latent.get_shape().size() != 4)
        throw invalid_argument("FLUX decode takes an unpacked latent [N,C,h,w] (what the step callback receives)");
    return vae_->decode(latent);
}

ResolvedParams FluxPipeline::resolve(Task task, const GenerationParams& p, const ImageInputs& images, size_t& max_sequence_length) const {
    if (!supports(task))
        throw invalid_argument(inpainting_only_ ? class_name_ + " is an inpainting pipeline; it cannot run " + std::string(task_name(task))
                                                : class_name_ + " has no vae_encoder; it cannot run " + std::string(task_name(task)));
    const size_t scale = vae_->scale_factor();
    FamilyDefaults defaults;
    if (fill_) {
        defaults.guidance_scale = 30.0f;
        defaults.steps = 50;
        defaults.strength = 1.0f;
    } else {
        defaults.guidance_scale = task == Task::Text2Image ? 3.5f : 7.0f;
        defaults.steps = 28;
        defaults.strength = task == Task::Text2Image ? 1.0f : 0.6f;
    }
    defaults.width = defaults.height = kDefaultSampleSize * scale;
    defaults.static_shape = static_shape_ ? &*static_shape_ : nullptr;
    // Latents are packed 2x2, so the latent size must be even.
    const ResolvedParams r = resolve_common(task, p, images, defaults, 2 * scale,
                                            "twice the VAE scale factor " + std::to_string(scale) + ": FLUX packs 2x2 latent pixels");
    if (p.negative_prompt || p.negative_prompt_2 || p.negative_prompt_3)
        throw invalid_param((p.negative_prompt     ? "negative_prompt"
                             : p.negative_prompt_2 ? "negative_prompt_2"
                                                   : "negative_prompt_3"),
                            "FLUX does not use negative prompts (it runs without classifier-free guidance)");
    if (p.prompt_3) throw invalid_param("prompt_3", "FLUX has two text encoders: prompt_3 does not apply (prompt_2 goes to T5)");
    if (p.guidance_scale && !guidance_embeds_)
        throw invalid_param("guidance_scale",
                            "this FLUX transformer has no guidance embedding (FLUX.1-schnell style), so guidance_scale has no effect; "
                            "leave it unset");
    check_max_sequence_length(p, 1, 512, " (T5's limit)");
    if (!fill_ && task != Task::Text2Image && r.batch != 1)
        throw invalid_param("num_images_per_prompt",
                            "FLUX " + std::string(task_name(task)) + " makes one image per call (num_images_per_prompt = 1)");
    if (fill_) refuse_taylorseer(p, "FluxFillPipeline");
    check_flow_match_scheduler(p, "FLUX");
    max_sequence_length = static_cast<size_t>(p.max_sequence_length.value_or(kDefaultMaxSequenceLength));
    if (static_shape_ && max_sequence_length != static_cast<size_t>(kDefaultMaxSequenceLength))
        throw invalid_param("max_sequence_length", "this model was reshaped to static shapes with T5 compiled for max_sequence_length " +
                                                       std::to_string(kDefaultMaxSequenceLength) + "; leave it unset or give that; got " +
                                                       std::to_string(max_sequence_length));
    return r;
}

GenerationResult FluxPipeline::run(Task task, const GenerationParams& params, const ImageInputs& images,
                                   const GenerationControl& control) const {
    const auto start = Clock::now();
    size_t max_sequence_length = 0;
    const ResolvedParams r = resolve(task, params, images, max_sequence_length);
    const std::vector<AppliedAdapter> applied_adapters = adapters_->choose(params.adapters);
    const size_t scale = vae_->scale_factor(), h = r.height / scale, w = r.width / scale, seq = (h / 2) * (w / 2);
    const ov::Shape shape{r.batch, latent_channels_, h, w};
    const size_t count = ov::shape_size(shape);

    GenerationResult result = result_for_call(r, SchedulerType::FlowMatchEulerDiscrete);

    // Conditioning: CLIP's pooled output and T5's sequence (prompt_2 goes to T5), no negatives.
    auto t0 = Clock::now();
    const auto clip = text_encoder_->encode(params.prompt, "", false, &applied_adapters, &result.metrics.adapter_apply_ms);
    result.metrics.text_encoder_ms["text_encoder"] = ms_since(t0);
    const auto t1 = Clock::now();
    const ov::Tensor t5 = t5_->encode(params.prompt_2.value_or(params.prompt), "", false, max_sequence_length);
    result.metrics.text_encoder_ms["text_encoder_2"] = ms_since(t1);
    result.metrics.text_encode_ms = ms_since(t0);
    if (clip.size() < 2) throw EngineError(ErrorCode::UnsupportedModel, "the FLUX CLIP text encoder has no pooler_output");
    const ov::Tensor pooled = repeat_rows(clip[1], r.batch);
    const ov::Tensor prompt_embeds = repeat_rows(t5, r.batch);
    ov::Tensor txt_ids(ov::element::f32, ov::Shape{max_sequence_length, 3});
    std::fill_n(txt_ids.data<float>(), txt_ids.get_size(), 0.0f);
    const ov::Tensor img_ids = latent_image_ids(h / 2, w / 2);

    const std::unique_ptr<Scheduler> scheduler =
        scheduler_for_call(scheduler_config_, SchedulerType::FlowMatchEulerDiscrete, scheduler_source_);
    std::vector<float> timesteps;
    auto set_timesteps = [&] {
        timesteps = timesteps_for_call([&] {
            scheduler->set_timesteps(seq, r.steps, r.strength);
            return scheduler->float_timesteps();
        });
    };

    // Latents, in the oracle's random-number order: image encode, noise, masked-image encode (fill).
    RandomGenerator rng(static_cast<uint32_t>(params.rng_seed));
    ov::Tensor latent, noise, image_latent, latent_mask, fill_condition;
    ov::Tensor processed_image;
    if (task != Task::Text2Image) processed_image = normalize_image(resize_image_u8(images.image, r.height, r.width));
    if (fill_) {
        noise = ov::Tensor(ov::element::f32, shape);
        rng.fill_normal(noise.data<float>(), count);
        latent = pack_latents(noise);
        set_timesteps();  // after the latents, with the packed length (the same seq)
        // The image with the area to repaint blacked out (x * (1 - m)), encoded; the pixel mask as scale^2 channels.
        const ov::Tensor mask_condition = check_mask_not_empty(binarize_mask(resize_image_u8(images.mask, r.height, r.width)));
        const float* m = mask_condition.data<const float>();
        const size_t pixels = r.height * r.width;
        float* x = processed_image.data<float>();
        for (size_t c = 0; c < processed_image.get_shape()[1]; ++c)
            for (size_t k = 0; k < pixels; ++k) x[c * pixels + k] *= (1.0f - m[k]);
        t0 = Clock::now();
        const ov::Tensor masked_latent = vae_->encode(processed_image, rng);
        result.metrics.vae_encode_ms += ms_since(t0);
        const ov::Tensor packed_masked = pack_latents(repeat_rows(masked_latent, r.batch));
        const ov::Tensor packed_mask = pack_latents(mask_to_latent_channels(repeat_rows(mask_condition, r.batch), scale));
        fill_condition = concat_last_dim(packed_masked, packed_mask);
    } else {
        set_timesteps();
        if (task != Task::Text2Image) {
            t0 = Clock::now();
            image_latent = vae_->encode(processed_image, rng);
            result.metrics.vae_encode_ms += ms_since(t0);
            if (image_latent.get_size() != count)
                throw EngineError(ErrorCode::UnsupportedModel, "the VAE latent channels do not match the transformer's in_channels / 4");
        }
        noise = ov::Tensor(ov::element::f32, shape);
        rng.fill_normal(noise.data<float>(), count);
        if (task == Task::Text2Image) {
            latent = pack_latents(noise);
        } else {
            ov::Tensor start_latent = copy_tensor(image_latent);
            scheduler->scale_noise(start_latent.data<float>(), noise.data<const float>(), count, timesteps.front());
            latent = pack_latents(start_latent);
        }
        if (task == Task::Inpainting) {
            noise = pack_latents(noise);
            image_latent = pack_latents(image_latent);
            // The latent-size mask, repeated over the channels and packed like the latents.
            const ov::Tensor mask_condition = check_mask_not_empty(binarize_mask(resize_image_u8(images.mask, r.height, r.width)));
            const ov::Tensor small = downscale_mask(mask_condition, h, w);
            ov::Tensor channels(ov::element::f32, shape);
            for (size_t c = 0; c < shape[0] * shape[1]; ++c)
                std::copy_n(small.data<const float>(), h * w, channels.data<float>() + c * h * w);
            latent_mask = pack_latents(channels);
        }
    }
    const size_t packed_count = latent.get_size();
    TaylorSeerCache cache(fill_ ? std::nullopt : TaylorSeerCache::config_for(params, task == Task::Text2Image), timesteps.size());

    auto request = transformer_->borrow();
    if (transformer_lora_) result.metrics.adapter_apply_ms += transformer_lora_->apply(request, applied_adapters);
    ov::Tensor hidden_states = request.input_buffer("hidden_states", fill_ ? ov::Shape{r.batch, seq, in_channels_} : latent.get_shape());
    ov::Tensor timestep = request.input_buffer("timestep", ov::Shape{1});
    request.write_input("encoder_hidden_states", prompt_embeds);
    request.write_input("pooled_projections", pooled);
    request.write_input("txt_ids", txt_ids);
    request.write_input("img_ids", img_ids);
    if (guidance_embeds_) {
        ov::Tensor guidance = request.input_buffer("guidance", ov::Shape{r.batch});
        std::fill_n(guidance.data<float>(), r.batch, r.guidance);
    }

    std::vector<float> predicted(cache.active() ? packed_count : 0), noised;
    DenoisingLoop loop;
    loop.num_steps = timesteps.size();
    loop.step = [&](size_t i) {
        const float* prediction;
        if (cache.computes(i)) {
            if (fill_) {
                // Per token: [latent | masked image latent | mask].
                const size_t a = latent.get_shape()[2], b = fill_condition.get_shape()[2];
                for (size_t t = 0; t < r.batch * seq; ++t) {
                    float* dst = hidden_states.data<float>() + t * (a + b);
                    std::copy_n(latent.data<const float>() + t * a, a, dst);
                    std::copy_n(fill_condition.data<const float>() + t * b, b, dst + a);
                }
            } else {
                latent.copy_to(hidden_states);
            }
            timestep.data<float>()[0] = timesteps[i] / 1000.0f;
            infer_denoiser(*request, result, "FLUX transformer");
            const ov::Tensor output = request->get_output_tensor(0);
            if (output.get_size() != packed_count)
                throw EngineError(ErrorCode::UnsupportedModel, "the FLUX transformer output does not match the latent's shape");
            prediction = output.data<const float>();
            cache.update(i, prediction, packed_count);
        } else {
            cache.predict(i, predicted.data());
            prediction = predicted.data();
        }
        const StepResult step = scheduler->step(prediction, latent.data<float>(), packed_count, i, rng);
        std::copy(step.latent.begin(), step.latent.end(), latent.data<float>());
        if (task == Task::Inpainting && !fill_) {
            // Outside the mask, the input image noised to the next step's level (the last step: the image itself).
            noised.assign(image_latent.data<const float>(), image_latent.data<const float>() + packed_count);
            if (i + 1 < timesteps.size()) {
                scheduler->float_timesteps();  // as the oracle, which re-reads them here
                scheduler->scale_noise(noised.data(), noise.data<const float>(), packed_count, timesteps[i + 1]);
            }
            blend_outside_mask(latent.data<float>(), noised.data(), latent_mask.data<const float>(), packed_count, packed_count);
        }
    };
    loop.latent_for_callback = [&] { return unpack_latents(latent, h, w); };
    finish_generation(run_denoising_loop(loop, control, result), [&] { return vae_->decode(unpack_latents(latent, h, w)); }, start, result);
    return result;
}

}  // namespace ovd
