#include "pipelines/zimage_pipeline.hpp"

#include <algorithm>
#include <limits>

#include "base/errors.hpp"
#include "base/random_generator.hpp"
#include "base/tensor_ops.hpp"
#include "models/image_processor.hpp"
#include "pipelines/denoising_loop.hpp"
#include "pipelines/resolved_params.hpp"

namespace ovd {
namespace {

constexpr int64_t kDefaultMaxSequenceLength = 512;
constexpr float kDefaultGuidance = 5.0f;
constexpr size_t kDefaultSize = 1024;     // the oracle's default width and height, whatever the VAE
constexpr size_t kSequenceMultiple = 32;  // the transformer pads caption and image token lists to this

size_t round_up(size_t n, size_t multiple) { return (n + multiple - 1) / multiple * multiple; }

}  // namespace

ZImageTextInputs zimage_transformer_inputs(const std::vector<ov::Tensor>& captions, size_t rows, size_t cols, size_t text_length) {
    const size_t batch = captions.size(), width = captions.front().get_shape()[1];
    size_t longest = 0;
    for (const ov::Tensor& c : captions) longest = std::max(longest, round_up(c.get_shape()[0], kSequenceMultiple));
    if (text_length) longest = text_length;
    const size_t image_tokens = rows * cols, padded_image = round_up(image_tokens, kSequenceMultiple);
    ZImageTextInputs in{ov::Tensor(ov::element::f32, ov::Shape{batch, longest, width}),
                        ov::Tensor(ov::element::f32, ov::Shape{batch, longest}), ov::Tensor(ov::element::i32, ov::Shape{batch, longest, 3}),
                        ov::Tensor(ov::element::i32, ov::Shape{batch, padded_image, 3})};
    std::fill_n(in.encoder_hidden_states.data<float>(), in.encoder_hidden_states.get_size(), 0.0f);
    std::fill_n(in.encoder_attention_mask.data<float>(), in.encoder_attention_mask.get_size(), std::numeric_limits<float>::lowest());
    std::fill_n(in.txt_ids.data<int32_t>(), in.txt_ids.get_size(), 0);
    std::fill_n(in.img_ids.data<int32_t>(), in.img_ids.get_size(), 0);
    for (size_t b = 0; b < batch; ++b) {
        const size_t length = captions[b].get_shape()[0], padded = round_up(length, kSequenceMultiple);
        std::copy_n(captions[b].data<const float>(), length * width, in.encoder_hidden_states.data<float>() + b * longest * width);
        std::fill_n(in.encoder_attention_mask.data<float>() + b * longest, length, 0.0f);
        int32_t* txt = in.txt_ids.data<int32_t>() + b * longest * 3;
        for (size_t k = 0; k < padded; ++k) txt[3 * k] = static_cast<int32_t>(k + 1);
        int32_t* img = in.img_ids.data<int32_t>() + b * padded_image * 3;
        for (size_t i = 0; i < rows; ++i)
            for (size_t j = 0; j < cols; ++j) {
                int32_t* id = img + 3 * (i * cols + j);
                id[0] = static_cast<int32_t>(padded + 1);
                id[1] = static_cast<int32_t>(i);
                id[2] = static_cast<int32_t>(j);
            }
    }
    return in;
}

ZImagePipeline::ZImagePipeline(const ModelFolder& folder, const LoadConfig& load_config) {
    folder.expect_component("text_encoder", "Qwen3Model");
    folder.expect_component("transformer", "ZImageTransformer2DModel");
    folder.expect_component("vae", "AutoencoderKL");
    // openvino_genai's Z-Image pipeline takes adapters and applies none of them, whatever their key names: refused here
    // rather than ignored.
    if (!load_config.adapters.empty())
        throw invalid_argument(
            "LoRA adapters are not supported for Z-Image (openvino_genai accepts them for Z-Image but applies none); "
            "load it without them");

    load_flow_match_scheduler(folder, "Z-Image");

    const Json config = folder.json("transformer/config.json");
    in_channels_ = config.get_or<size_t>("in_channels", 16);
    const Json* patches = config.find("all_patch_size");
    if (patches && patches->is_array() && patches->size() > 0 && patches->at(0).is_integer())
        patch_size_ = static_cast<size_t>(patches->at(0).as_int());
    if (patch_size_ != 2)
        throw EngineError(ErrorCode::UnsupportedModel, folder.root().string() +
                                                           "/transformer/config.json: Z-Image transformers patch 2x2 latent pixels; got " +
                                                           std::to_string(patch_size_));

    // Static shapes (the oracle's reshape): the encoder at [2, 512] ids with guidance (negative prompt and prompt in one
    // batch), else [1, 512]; the transformer at N rows (run once per guidance branch) with 512 caption positions (the
    // image positions stay dynamic, as the oracle leaves them); the VAE at N images.
    static_shape_ = load_config.static_shape;
    const size_t scale = AutoencoderKL::scale_factor_of(folder);
    if (static_shape_) check_static_shape(*static_shape_, patch_size_ * scale, size_rule(scale));
    text_encoder_ = Qwen3TextEncoder::load(folder, load_config.text_encoder, load_config.properties, "Z-Image",
                                           static_shape_ ? kDefaultMaxSequenceLength : 0, static_guided() ? 2 : 1);
    const std::string transformer_xml = folder.file("transformer/openvino_model.xml").string();
    IrModel::Rewrite rewrite;
    if (static_shape_)
        rewrite = [&](const std::shared_ptr<ov::Model>& transformer) {
            const int64_t n = static_shape_->num_images_per_prompt, unit = static_cast<int64_t>(patch_size_ * scale);
            const int64_t h = static_shape_->height / unit * static_cast<int64_t>(patch_size_),
                          w = static_shape_->width / unit * static_cast<int64_t>(patch_size_);
            const int64_t text = kDefaultMaxSequenceLength;
            reshape_inputs(
                transformer,
                [&](const std::string& name, ov::PartialShape shape) -> std::optional<ov::PartialShape> {
                    if (shape.rank().is_dynamic()) return std::nullopt;
                    if (name == "hidden_states" && shape.size() == 4) return ov::PartialShape{n, shape[1], h, w};
                    if (name == "timestep" && shape.size() == 1) return ov::PartialShape{n};
                    if (name == "encoder_hidden_states" && shape.size() == 3) return ov::PartialShape{n, text, shape[2]};
                    if (name == "encoder_attention_mask" && shape.size() == 2) return ov::PartialShape{n, text};
                    if (name == "txt_ids" && shape.size() == 3) return ov::PartialShape{n, text, shape[2]};
                    return std::nullopt;
                },
                transformer_xml);
        };
    transformer_ = IrModel::load(transformer_xml, load_config.denoiser, load_config.properties, rewrite);
    vae_ = AutoencoderKL::load(folder, folder.exists("vae_encoder/openvino_model.xml"), load_config.vae, load_config.properties,
                               vae_static_images(static_shape_));
    if (vae_->latent_channels() != in_channels_)
        throw EngineError(ErrorCode::UnsupportedModel, folder.root().string() + "/transformer/config.json: in_channels " +
                                                           std::to_string(in_channels_) + " does not match the VAE's " +
                                                           std::to_string(vae_->latent_channels()) + " latent channels");
}

std::string ZImagePipeline::size_rule(size_t scale) const {
    return std::to_string(patch_size_) + " x the VAE scale factor " + std::to_string(scale) +
           ": the transformer takes 2x2 patches of latent pixels";
}

bool ZImagePipeline::static_guided() const { return static_shape_ && static_shape_->guidance_scale.value_or(kDefaultGuidance) > 0.0f; }

bool ZImagePipeline::supports(Task task) const { return task == Task::Text2Image || (task == Task::Image2Image && vae_->has_encoder()); }

ov::Tensor ZImagePipeline::decode(const ov::Tensor& latent) const {
    if (latent.get_shape().size() != 4) throw invalid_argument("Z-Image decode takes a latent [N,C,h,w] (what the step callback receives)");
    return vae_->decode(latent);
}

ResolvedParams ZImagePipeline::resolve(Task task, const GenerationParams& p, const ImageInputs& images, size_t& max_sequence_length) const {
    check_task_supported(supports(task), task, "Z-Image", class_name_);
    const size_t scale = vae_->scale_factor();
    FamilyDefaults defaults;
    defaults.guidance_scale = kDefaultGuidance;
    defaults.steps = 50;
    defaults.strength = task == Task::Text2Image ? 1.0f : 0.6f;
    defaults.width = defaults.height = kDefaultSize;
    defaults.static_shape = static_shape_ ? &*static_shape_ : nullptr;
    if (task == Task::Image2Image) {
        // The oracle runs image-to-image at the input's own size and ignores width and height: refuse other sizes.
        check_image_inputs(task, images);
        defaults.height = images.image.get_shape()[1];
        defaults.width = images.image.get_shape()[2];
        if ((p.width && static_cast<size_t>(*p.width) != defaults.width) || (p.height && static_cast<size_t>(*p.height) != defaults.height))
            throw invalid_param(p.width && static_cast<size_t>(*p.width) != defaults.width ? "width" : "height",
                                "Z-Image image-to-image runs at the input image's size (" + std::to_string(defaults.width) + "x" +
                                    std::to_string(defaults.height) + "); leave width and height unset or give that size");
    }
    const ResolvedParams r = resolve_common(task, p, images, defaults, patch_size_ * scale, size_rule(scale));
    check_static_guidance(defaults.static_shape, static_guided(), r.guidance > 0.0f, r.guidance, 0.0f);
    if (task == Task::Image2Image && !(r.strength > 0.0f))
        throw invalid_param("strength", "Z-Image image-to-image needs strength in (0, 1]; got 0");
    check_negative_prompt_guided(p, r.guidance);
    refuse_extra_prompts(p, "Z-Image");
    refuse_extra_negative_prompts(p, "Z-Image");
    refuse_taylorseer(p, "Z-Image");
    check_flow_match_scheduler(p, "Z-Image");
    if (p.max_sequence_length && *p.max_sequence_length < 1)
        throw invalid_param("max_sequence_length", "max_sequence_length must be at least 1; got " + std::to_string(*p.max_sequence_length));
    max_sequence_length = static_cast<size_t>(p.max_sequence_length.value_or(kDefaultMaxSequenceLength));
    if (static_shape_) check_static_sequence_length(max_sequence_length, kDefaultMaxSequenceLength);
    return r;
}

GenerationResult ZImagePipeline::run(Task task, const GenerationParams& params, const ImageInputs& images,
                                     const GenerationControl& control) const {
    const auto start = Clock::now();
    size_t max_sequence_length = 0;
    const ResolvedParams r = resolve(task, params, images, max_sequence_length);
    const size_t scale = vae_->scale_factor(), h = r.height / scale, w = r.width / scale;
    const ov::Shape shape{r.batch, in_channels_, h, w};
    const size_t count = ov::shape_size(shape);
    // Classifier-free guidance whenever the scale is positive (Z-Image's rule, unlike the other families' > 1).
    const bool do_cfg = r.guidance > 0.0f;

    GenerationResult result = result_for_call(r, SchedulerType::FlowMatchEulerDiscrete);

    // Captions: [negative x N, positive x N] with guidance (the empty negative prompt by default), else [positive x N].
    const std::optional<std::string> negative = do_cfg ? std::optional<std::string>(params.negative_prompt.value_or("")) : std::nullopt;
    const std::vector<ov::Tensor> captions =
        static_shape_ ? encode_prompt_rows_batched(
                            [&](const std::vector<std::string>& texts) { return text_encoder_->encode_batch(texts, max_sequence_length); },
                            params.prompt, negative, r.batch, result.metrics)
                      : encode_prompt_rows([&](const std::string& text) { return text_encoder_->encode(text, max_sequence_length); },
                                           params.prompt, negative, r.batch, result.metrics);
    const size_t rows = captions.size();
    // Static shapes: one transformer run per guidance branch (N rows each), with its text padded to the static length.
    const size_t branches = static_shape_ && do_cfg ? 2 : 1, branch_rows = rows / branches;
    std::vector<ZImageTextInputs> text;
    for (size_t b = 0; b < branches; ++b)
        text.push_back(
            zimage_transformer_inputs(std::vector<ov::Tensor>(captions.begin() + static_cast<std::ptrdiff_t>(b * branch_rows),
                                                              captions.begin() + static_cast<std::ptrdiff_t>((b + 1) * branch_rows)),
                                      h / patch_size_, w / patch_size_, static_shape_ ? max_sequence_length : 0));

    const std::unique_ptr<Scheduler> scheduler =
        scheduler_for_call(scheduler_config_, SchedulerType::FlowMatchEulerDiscrete, scheduler_source_);
    const std::vector<float> timesteps = timesteps_for_call([&] {
        scheduler->set_timesteps((h / patch_size_) * (w / patch_size_), r.steps, r.strength);
        return scheduler->float_timesteps();
    });

    // Latents, in the oracle's random-number order: the noise first, then (image-to-image) the image's encode sample.
    RandomGenerator rng(static_cast<uint32_t>(params.rng_seed));
    ov::Tensor latent(ov::element::f32, shape);
    rng.fill_normal(latent.data<float>(), count);
    if (task == Task::Image2Image) {
        const ov::Tensor processed = normalize_image(resize_image_u8(images.image, r.height, r.width));
        const auto t0 = Clock::now();
        const ov::Tensor image_latent = repeat_rows(vae_->encode(processed, rng), r.batch);
        result.metrics.vae_encode_ms += ms_since(t0);
        const ov::Tensor noise = latent;
        latent = copy_tensor(image_latent);
        scheduler->scale_noise(latent.data<float>(), noise.data<const float>(), count, timesteps.front());
    }

    auto request = transformer_->borrow();
    std::vector<float> prediction(rows / r.batch * count), velocity(count);
    DenoisingLoop loop;
    loop.num_steps = timesteps.size();
    loop.step = [&](size_t i) {
        for (size_t b = 0; b < branches; ++b) {
            ov::Tensor hidden_states = request.input_buffer("hidden_states", ov::Shape{branch_rows, in_channels_, h, w});
            ov::Tensor timestep = request.input_buffer("timestep", ov::Shape{branch_rows});
            request.write_input("encoder_hidden_states", text[b].encoder_hidden_states);
            request.write_input("encoder_attention_mask", text[b].encoder_attention_mask);
            request.write_input("txt_ids", text[b].txt_ids);
            request.write_input("img_ids", text[b].img_ids);
            for (size_t copy = 0; copy < branch_rows / r.batch; ++copy)
                std::copy_n(latent.data<const float>(), count, hidden_states.data<float>() + copy * count);
            // The transformer's time runs the other way: 0 at pure noise, 1 at the image.
            std::fill_n(timestep.data<float>(), branch_rows, (1000.0f - timesteps[i]) / 1000.0f);
            infer_denoiser(*request, result, "Z-Image transformer");
            const ov::Tensor output = request->get_output_tensor(0);
            if (output.get_size() != branch_rows / r.batch * count)
                throw EngineError(ErrorCode::UnsupportedModel, "the Z-Image transformer output does not match the latent's shape");
            std::copy_n(output.data<const float>(), output.get_size(), prediction.data() + b * output.get_size());
        }
        apply_guidance(prediction.data(), count, do_cfg, r.guidance, velocity.data());
        // The model predicts image minus noise; the scheduler steps along noise minus image.
        for (float& v : velocity) v = -v;
        const StepResult step = scheduler->step(velocity.data(), latent.data<float>(), count, i, rng);
        std::copy(step.latent.begin(), step.latent.end(), latent.data<float>());
    };
    loop.latent_for_callback = [&] { return copy_tensor(latent); };
    finish_generation(run_denoising_loop(loop, control, result), [&] { return vae_->decode(latent); }, start, result);
    return result;
}

}  // namespace ovd
