#include "pipelines/qwen_image_pipeline.hpp"

#include <algorithm>

#include "base/errors.hpp"
#include "base/random_generator.hpp"
#include "base/tensor_ops.hpp"
#include "models/image_processor.hpp"
#include "pipelines/denoising_loop.hpp"
#include "pipelines/flux_latent_packing.hpp"
#include "pipelines/resolved_params.hpp"

namespace ovd {
namespace {

constexpr int64_t kDefaultMaxSequenceLength = 512;
constexpr int64_t kMaxSequenceLength = 1024;  // the oracle's limit
constexpr float kDefaultGuidance = 4.0f;
constexpr size_t kDefaultSampleSize = 128;  // default size = this x the VAE scale factor, as the oracle
// The oracle's fixed prompt template; the text embedding starts after its first 34 tokens (the system part as Qwen2.5's
// tokenizer splits it), whatever the model's tokenizer makes of them.
const std::string kTemplatePrefix =
    "<|im_start|>system\nDescribe the image by detailing the color, shape, size, texture, quantity, text, spatial "
    "relationships of the objects and background:<|im_end|>\n<|im_start|>user\n";
const std::string kTemplateSuffix = "<|im_end|>\n<|im_start|>assistant\n";
constexpr size_t kTemplateDrop = 34;

}  // namespace

QwenImagePipeline::QwenImagePipeline(const ModelFolder& folder, const LoadConfig& load_config) {
    folder.expect_component("text_encoder", "Qwen2_5_VLForConditionalGeneration");
    folder.expect_component("transformer", "QwenImageTransformer2DModel");
    folder.expect_component("vae", "AutoencoderKLQwenImage");

    // The oracle shifts Qwen-Image's sigmas with FLUX.1's linear mu whatever time_shift_type says.
    load_flow_match_scheduler(folder, "Qwen-Image", [](Json& config) {
        if (config.is_object()) config.set("time_shift_type", Json(std::string("linear")));
    });

    // Static shapes (the oracle's reshape): the encoder at [2, 34 + 512] ids when the reshape's guidance is above 1
    // (negative prompt and prompt in one batch), else [1, 546]; the transformer at N rows (run once per guidance branch)
    // with N x the image tokens and 512 text tokens; the VAE at N images.
    static_shape_ = load_config.static_shape;
    vae_ = AutoencoderKLQwenImage::load(folder, load_config.vae, load_config.properties, vae_static_images(static_shape_));
    if (static_shape_) check_static_shape(*static_shape_, 2 * vae_->scale_factor(), size_rule());
    latent_channels_ = vae_->latent_channels();
    const Json config = folder.json("transformer/config.json");
    const size_t in_channels = config.get_or<size_t>("in_channels", 4 * latent_channels_);
    if (in_channels != 4 * latent_channels_ || config.get_or<size_t>("patch_size", 2) != 2)
        throw EngineError(ErrorCode::UnsupportedModel, folder.root().string() + "/transformer/config.json: in_channels " +
                                                           std::to_string(in_channels) + " is not 4 x the VAE's " +
                                                           std::to_string(latent_channels_) + " latent channels (2x2 patches)");
    text_encoder_ =
        Qwen3TextEncoder::load_for_template(folder, load_config.text_encoder, load_config.properties,
                                            static_shape_ ? kTemplateDrop + kDefaultMaxSequenceLength : 0, static_guided() ? 2 : 1);
    // LoRA, as the oracle: the transformer only, keys as they are in the file, prefix "transformer".
    register_adapters(load_config, LoraNaming::Raw);
    const std::string transformer_xml = folder.file("transformer/openvino_model.xml").string();
    IrModel::Rewrite reshape;
    if (static_shape_)
        reshape = [&](const std::shared_ptr<ov::Model>& transformer) {
            const int64_t n = static_shape_->num_images_per_prompt, unit = static_cast<int64_t>(2 * vae_->scale_factor());
            const int64_t tokens = (static_shape_->height / unit) * (static_shape_->width / unit);
            reshape_inputs(
                transformer,
                [&](const std::string& name, ov::PartialShape shape) -> std::optional<ov::PartialShape> {
                    if (shape.rank().is_dynamic()) return std::nullopt;
                    // The feature widths stay dynamic, as the oracle leaves them.
                    if (name == "hidden_states" && shape.size() == 3) return ov::PartialShape{n, tokens, -1};
                    if (name == "encoder_hidden_states" && shape.size() == 3) return ov::PartialShape{n, kDefaultMaxSequenceLength, -1};
                    if (name == "encoder_hidden_states_mask" && shape.size() == 2) return ov::PartialShape{n, kDefaultMaxSequenceLength};
                    if (name == "timestep" && shape.size() == 1) return ov::PartialShape{n};
                    return std::nullopt;
                },
                transformer_xml);
        };
    transformer_ = load_transformer(transformer_xml, load_config.denoiser, load_config.properties, reshape);
    adapter_report_ = adapters_->report();
}

std::string QwenImagePipeline::size_rule() const {
    return "twice the VAE scale factor " + std::to_string(vae_->scale_factor()) + ": Qwen-Image packs 2x2 latent pixels";
}

bool QwenImagePipeline::static_guided() const { return static_shape_ && static_shape_->guidance_scale.value_or(kDefaultGuidance) > 1.0f; }

bool QwenImagePipeline::supports(Task task) const { return task == Task::Text2Image || (task == Task::Image2Image && vae_->has_encoder()); }

ov::Tensor QwenImagePipeline::decode(const ov::Tensor& latent) const {
    const ov::Shape& s = latent.get_shape();
    if (s.size() != 4 || s[1] != latent_channels_)
        throw invalid_argument("Qwen-Image decode takes a latent [N," + std::to_string(latent_channels_) +
                               ",h,w] (what the step callback receives)");
    return vae_->decode(latent);
}

ResolvedParams QwenImagePipeline::resolve(Task task, const GenerationParams& p, const ImageInputs& images,
                                          size_t& max_sequence_length) const {
    check_task_supported(supports(task), task, "Qwen-Image", class_name_);
    const size_t scale = vae_->scale_factor();
    FamilyDefaults defaults;
    defaults.guidance_scale = kDefaultGuidance;
    defaults.steps = 50;
    // Image-to-image: SDEdit from the input resized to the size asked for, else the default size (not the input's).
    defaults.strength = task == Task::Image2Image ? 0.6f : 1.0f;
    defaults.width = defaults.height = kDefaultSampleSize * scale;
    defaults.static_shape = static_shape_ ? &*static_shape_ : nullptr;
    const ResolvedParams r = resolve_common(task, p, images, defaults, 2 * scale, size_rule());
    // The static encoder batch follows the reshape's guidance (above 1: two rows), with or without a negative prompt.
    check_static_guidance(defaults.static_shape, static_guided(), r.guidance > 1.0f, r.guidance);
    if (task == Task::Image2Image && r.batch != 1)
        throw invalid_param("num_images_per_prompt", "Qwen-Image image-to-image makes one image per call (the oracle fails on more); got " +
                                                         std::to_string(r.batch));
    check_negative_prompt_guided(p, r.guidance);
    refuse_extra_prompts(p, "Qwen-Image");
    refuse_extra_negative_prompts(p, "Qwen-Image");
    refuse_taylorseer(p, "Qwen-Image");
    check_flow_match_scheduler(p, "Qwen-Image");
    check_max_sequence_length(p, 1, kMaxSequenceLength, " for Qwen-Image");
    max_sequence_length = static_cast<size_t>(p.max_sequence_length.value_or(kDefaultMaxSequenceLength));
    if (static_shape_) check_static_sequence_length(max_sequence_length, kDefaultMaxSequenceLength);
    return r;
}

ov::Tensor QwenImagePipeline::encode_prompt(const std::string& prompt, size_t max_sequence_length) const {
    return text_encoder_->encode_text(kTemplatePrefix + prompt + kTemplateSuffix, kTemplateDrop + max_sequence_length, kTemplateDrop);
}

GenerationResult QwenImagePipeline::run(Task task, const GenerationParams& params, const ImageInputs& images,
                                        const GenerationControl& control) const {
    const auto start = Clock::now();
    size_t max_sequence_length = 0;
    const ResolvedParams r = resolve(task, params, images, max_sequence_length);
    const std::vector<AppliedAdapter> applied_adapters = adapters_->choose(params.adapters);
    const size_t scale = vae_->scale_factor(), h = r.height / scale, w = r.width / scale;
    const size_t seq = (h / 2) * (w / 2), features = 4 * latent_channels_;
    const size_t count = r.batch * seq * features;  // the packed latent of the batch
    const bool do_cfg = params.negative_prompt.has_value() && r.guidance > 1.0f;

    GenerationResult result = result_for_call(r, SchedulerType::FlowMatchEulerDiscrete);

    // Prompts: [negative x N, prompt x N] with guidance, else [prompt x N]. Static shapes made for guidance encode two
    // rows in one batch, the second the empty negative prompt when the call has none (its rows then go unused).
    std::vector<ov::Tensor> prompts;
    if (static_guided()) {
        prompts = encode_prompt_rows_batched(
            [&](const std::vector<std::string>& texts) {
                std::vector<std::string> templated;
                for (const std::string& text : texts) templated.push_back(kTemplatePrefix + text + kTemplateSuffix);
                return text_encoder_->encode_text_batch(templated, kTemplateDrop + max_sequence_length, kTemplateDrop);
            },
            params.prompt, params.negative_prompt.value_or(""), r.batch, result.metrics);
        if (!do_cfg) prompts.erase(prompts.begin(), prompts.begin() + static_cast<std::ptrdiff_t>(r.batch));
    } else {
        prompts = encode_prompt_rows([&](const std::string& text) { return encode_prompt(text, max_sequence_length); }, params.prompt,
                                     do_cfg ? params.negative_prompt : std::nullopt, r.batch, result.metrics);
    }
    const size_t rows = prompts.size(), text_width = prompts.back().get_shape()[1];
    // Static shapes: one transformer run per guidance branch (N rows each).
    const size_t branches = static_shape_ && do_cfg ? 2 : 1, branch_rows = rows / branches;

    const std::unique_ptr<Scheduler> scheduler =
        scheduler_for_call(scheduler_config_, SchedulerType::FlowMatchEulerDiscrete, scheduler_source_);
    const std::vector<float> timesteps = timesteps_for_call([&] {
        scheduler->set_timesteps(seq, r.steps, r.strength);
        return scheduler->float_timesteps();
    });

    // Random numbers in the oracle's order: image-to-image samples the image's encoding first, then the noise; one
    // draw over the unpacked batch, then packed.
    RandomGenerator rng(static_cast<uint32_t>(params.rng_seed));
    ov::Tensor image_latent;
    if (task == Task::Image2Image) {
        const ov::Tensor processed = normalize_image(resize_image_u8(images.image, r.height, r.width));
        const auto t0 = Clock::now();
        image_latent = vae_->encode(processed, rng);
        result.metrics.vae_encode_ms += ms_since(t0);
    }
    ov::Tensor noise(ov::element::f32, ov::Shape{r.batch, latent_channels_, h, w});
    rng.fill_normal(noise.data<float>(), noise.get_size());
    ov::Tensor latent = pack_latents(noise);
    if (image_latent) {
        const ov::Tensor packed_noise = latent;
        latent = pack_latents(image_latent);
        scheduler->scale_noise(latent.data<float>(), packed_noise.data<const float>(), count, timesteps.front());
    }

    auto request = transformer_.model->borrow();
    apply_adapters(transformer_, request, applied_adapters, result.metrics);
    const auto& compiled = transformer_.model->compiled();
    // Per branch: every prompt padded with zeros to max_sequence_length rows, the mask 1 on its real rows.
    std::vector<ov::Tensor> text, mask;
    for (size_t b = 0; b < branches; ++b) {
        text.emplace_back(ov::element::f32, ov::Shape{branch_rows, max_sequence_length, text_width});
        mask.emplace_back(ov::element::i64, ov::Shape{branch_rows, max_sequence_length});
        std::fill_n(text[b].data<float>(), text[b].get_size(), 0.0f);
        std::fill_n(mask[b].data<int64_t>(), mask[b].get_size(), int64_t{0});
        for (size_t row = 0; row < branch_rows; ++row) {
            const ov::Tensor& prompt = prompts[b * branch_rows + row];
            const size_t length = prompt.get_shape()[0];
            std::copy_n(prompt.data<const float>(), length * text_width, text[b].data<float>() + row * max_sequence_length * text_width);
            std::fill_n(mask[b].data<int64_t>() + row * max_sequence_length, length, int64_t{1});
        }
    }
    if (compiled.input("encoder_hidden_states_mask").get_element_type() != ov::element::i64)
        throw EngineError(ErrorCode::UnsupportedModel, "the Qwen-Image transformer's encoder_hidden_states_mask must be i64");
    // The packed grid, as scalars.
    for (const char* name : {"height", "width"}) {
        ov::Tensor size = request.input_buffer(compiled.input(name), ov::Shape{});
        if (size.get_element_type() != ov::element::i64)
            throw EngineError(ErrorCode::UnsupportedModel, std::string("the Qwen-Image transformer's ") + name + " must be an i64 scalar");
        *size.data<int64_t>() = static_cast<int64_t>(std::string(name) == "height" ? h / 2 : w / 2);
    }

    const size_t per_image = seq * features;
    std::vector<float> prediction(rows * per_image), velocity(count);
    DenoisingLoop loop;
    loop.num_steps = timesteps.size();
    loop.step = [&](size_t i) {
        const float* x = latent.data<const float>();
        for (size_t b = 0; b < branches; ++b) {
            if (branches > 1 || i == 0) {
                request.write_input("encoder_hidden_states", text[b]);
                request.write_input("encoder_hidden_states_mask", mask[b]);
            }
            ov::Tensor hidden_states = request.input_buffer("hidden_states", ov::Shape{branch_rows, seq, features});
            ov::Tensor timestep = request.input_buffer("timestep", ov::Shape{branch_rows});
            for (size_t row = 0; row < branch_rows; ++row)
                std::copy_n(x + (row % r.batch) * per_image, per_image, hidden_states.data<float>() + row * per_image);
            // The transformer takes sigma (timestep / 1000).
            std::fill_n(timestep.data<float>(), branch_rows, timesteps[i] / 1000.0f);
            infer_denoiser(*request, result, "Qwen-Image transformer");
            const ov::Tensor output = request->get_output_tensor(0);
            if (output.get_size() != branch_rows * per_image)
                throw EngineError(ErrorCode::UnsupportedModel, "the Qwen-Image transformer output does not match its input's shape");
            std::copy_n(output.data<const float>(), output.get_size(), prediction.data() + b * output.get_size());
        }
        if (do_cfg)
            apply_guidance_norm_rescale(prediction.data(), count, r.guidance, features, velocity.data());
        else
            std::copy_n(prediction.data(), count, velocity.data());
        const StepResult step = scheduler->step(velocity.data(), latent.data<float>(), count, i, rng);
        std::copy(step.latent.begin(), step.latent.end(), latent.data<float>());
    };
    loop.latent_for_callback = [&] { return unpack_latents(latent, h, w); };
    finish_generation(run_denoising_loop(loop, control, result), [&] { return vae_->decode(unpack_latents(latent, h, w)); }, start, result);
    return result;
}

}  // namespace ovd
