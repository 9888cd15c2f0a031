#include "pipelines/flux2_klein_pipeline.hpp"

#include <algorithm>
#include <cmath>

#include "base/errors.hpp"
#include "base/random_generator.hpp"
#include "base/tensor_ops.hpp"
#include "models/image_processor.hpp"
#include "pipelines/denoising_loop.hpp"
#include "pipelines/flux_latent_packing.hpp"
#include "pipelines/resolved_params.hpp"

namespace ovd {
namespace {

constexpr int64_t kMaxSequenceLength = 512;  // the default, and the oracle's limit
constexpr float kDefaultGuidance = 4.0f;
constexpr size_t kDefaultSampleSize = 128;  // default size = this x the VAE scale factor, as the oracle
// The exported encoder's outputs the oracle concatenates (fixed names, whatever the layer count).
const std::vector<std::string> kTextEncoderOutputs = {"hidden_states.9", "hidden_states.18", "hidden_states.27"};
constexpr float kReferenceTime = 10.0f;  // the time coordinate of the reference image's tokens

// Position ids f32 [batch, rows*cols, 4] = (time, row, col, 0) for a rows x cols token grid.
void write_image_ids(float* ids, size_t rows, size_t cols, float time) {
    for (size_t i = 0; i < rows; ++i)
        for (size_t j = 0; j < cols; ++j) {
            float* id = ids + 4 * (i * cols + j);
            id[0] = time;
            id[1] = static_cast<float>(i);
            id[2] = static_cast<float>(j);
            id[3] = 0.0f;
        }
}

}  // namespace

Flux2KleinPipeline::Flux2KleinPipeline(const ModelFolder& folder, const LoadConfig& load_config) {
    folder.expect_component("text_encoder", "Qwen3ForCausalLM");
    folder.expect_component("transformer", "Flux2Transformer2DModel");
    folder.expect_component("vae", "AutoencoderKLFlux2");
    distilled_ = folder.json("model_index.json").get_or<bool>("is_distilled", false);

    load_flow_match_scheduler(folder, "FLUX.2 klein");

    // Static shapes (the oracle's reshape): the encoder at [1, 512] ids, the transformer at the batch (doubled by
    // guidance on a model that is not distilled), the image tokens and 512 text tokens, the VAE at N images.
    static_shape_ = load_config.static_shape;
    const size_t scale = AutoencoderKL::scale_factor_of(folder);
    const std::string size_rule = "twice the VAE scale factor " + std::to_string(scale) + ": FLUX.2 packs 2x2 latent pixels";
    if (static_shape_) check_static_shape(*static_shape_, 2 * scale, size_rule);
    vae_ = AutoencoderKL::load(folder, folder.exists("vae_encoder/openvino_model.xml"), load_config.vae, load_config.properties,
                               vae_static_images(static_shape_));
    latent_channels_ = vae_->latent_channels();
    // The FLUX.2 exporter leaves the VAE's batch norm out of the IR and writes its statistics into the config.
    const Json vae = folder.json("vae_decoder/config.json");
    const auto means = vae.get_or<std::vector<double>>("bn_running_mean_data", {});
    const auto variances = vae.get_or<std::vector<double>>("bn_running_var_data", {});
    const float eps = vae.get_or<float>("batch_norm_eps", vae.get_or<float>("bn_eps", 1e-4f));
    if (means.size() != 4 * latent_channels_ || variances.size() != means.size())
        throw EngineError(ErrorCode::UnsupportedModel, folder.root().string() +
                                                           "/vae_decoder/config.json: needs bn_running_mean_data and bn_running_var_data "
                                                           "with " +
                                                           std::to_string(4 * latent_channels_) + " values each (4 x latent_channels)");
    for (size_t k = 0; k < means.size(); ++k) {
        latent_mean_.push_back(static_cast<float>(means[k]));
        latent_std_.push_back(std::sqrt(static_cast<float>(variances[k]) + eps));
    }

    const Json config = folder.json("transformer/config.json");
    const size_t in_channels = config.get_or<size_t>("in_channels", 4 * latent_channels_);
    if (in_channels != 4 * latent_channels_)
        throw EngineError(ErrorCode::UnsupportedModel, folder.root().string() + "/transformer/config.json: in_channels " +
                                                           std::to_string(in_channels) + " is not 4 x the VAE's " +
                                                           std::to_string(latent_channels_) + " latent channels");

    text_encoder_ = Qwen3TextEncoder::load(folder, load_config.text_encoder, load_config.properties, "FLUX.2 klein",
                                           static_shape_ ? kMaxSequenceLength : 0);
    const size_t text_width = encode_prompt("", 0).get_shape()[1];  // checks the outputs exist; runs nothing
    const size_t joint_width = config.get_or<size_t>("joint_attention_dim", text_width);
    if (text_width != joint_width)
        throw EngineError(ErrorCode::UnsupportedModel, folder.root().string() + "/transformer/config.json: joint_attention_dim " +
                                                           std::to_string(joint_width) + " does not match the text encoder's " +
                                                           std::to_string(text_width) + " (three hidden layers side by side)");
    transformer_xml_ = folder.file("transformer/openvino_model.xml").string();
    denoiser_device_ = load_config.denoiser;
    denoiser_properties_ = load_config.properties;
    // LoRA, as the oracle: the transformer only, prefix "transformer", names normalized as for FLUX.1.
    register_adapters(load_config, LoraNaming::Flux);
    transformer_ = compile_transformer(1);
    adapter_report_ = adapters_->report();
}

FlowTransformerPipeline::Transformer Flux2KleinPipeline::compile_transformer(int64_t token_grids) const {
    IrModel::Rewrite rewrite;
    if (static_shape_)
        rewrite = [&](const std::shared_ptr<ov::Model>& transformer) {
            const int64_t rows = static_shape_->num_images_per_prompt * (static_guided() ? 2 : 1);
            const int64_t scale = static_cast<int64_t>(2 * vae_->scale_factor());
            const int64_t tokens = token_grids * (static_shape_->height / scale) * (static_shape_->width / scale);
            const int64_t text = kMaxSequenceLength;
            reshape_inputs(
                transformer,
                [&](const std::string& name, ov::PartialShape shape) -> std::optional<ov::PartialShape> {
                    if (shape.rank().is_dynamic()) return std::nullopt;
                    if (name == "hidden_states" && shape.size() == 3) return ov::PartialShape{rows, tokens, shape[2]};
                    if (name == "encoder_hidden_states" && shape.size() == 3) return ov::PartialShape{rows, text, shape[2]};
                    if (name == "img_ids" && shape.size() == 3) return ov::PartialShape{rows, tokens, shape[2]};
                    if (name == "txt_ids" && shape.size() == 3) return ov::PartialShape{rows, text, shape[2]};
                    if (name == "timestep" && shape.size() == 1) return ov::PartialShape{rows};
                    return std::nullopt;
                },
                transformer_xml_);
        };
    return load_transformer(transformer_xml_, denoiser_device_, denoiser_properties_, rewrite);
}

const FlowTransformerPipeline::Transformer& Flux2KleinPipeline::transformer_for(Task task) const {
    if (task != Task::Image2Image || !static_shape_) return transformer_;
    // Static shapes: image-to-image feeds twice the tokens (noise and reference), so it needs a transformer compiled
    // for them, as the oracle's Image2ImagePipeline reshape makes. Compiled on first use; a failed compile leaves the
    // flag unset (call_once rethrows), so a later call tries again.
    std::call_once(reference_transformer_once_, [this] { reference_transformer_ = compile_transformer(2); });
    return reference_transformer_;
}

bool Flux2KleinPipeline::static_guided() const {
    return static_shape_ && !distilled_ && static_shape_->guidance_scale.value_or(kDefaultGuidance) > 1.0f;
}

bool Flux2KleinPipeline::supports(Task task) const {
    return task == Task::Text2Image || (task == Task::Image2Image && vae_->has_encoder());
}

void Flux2KleinPipeline::normalize_packed(ov::Tensor& packed) const {
    const size_t width = latent_mean_.size();
    float* x = packed.data<float>();
    for (size_t k = 0; k < packed.get_size(); ++k) x[k] = (x[k] - latent_mean_[k % width]) / latent_std_[k % width];
}

void Flux2KleinPipeline::denormalize_packed(ov::Tensor& packed) const {
    const size_t width = latent_mean_.size();
    float* x = packed.data<float>();
    for (size_t k = 0; k < packed.get_size(); ++k) x[k] = x[k] * latent_std_[k % width] + latent_mean_[k % width];
}

ov::Tensor Flux2KleinPipeline::decode(const ov::Tensor& latent) const {
    const ov::Shape& s = latent.get_shape();
    if (s.size() != 4 || s[1] != latent_channels_ || s[2] % 2 || s[3] % 2)
        throw invalid_argument("FLUX.2 klein decode takes a latent [N," + std::to_string(latent_channels_) +
                               ",h,w] with even h and w (what the step callback receives)");
    ov::Tensor packed = pack_latents(latent);
    denormalize_packed(packed);
    return vae_->decode(unpack_latents(packed, s[2], s[3]));
}

ResolvedParams Flux2KleinPipeline::resolve(Task task, const GenerationParams& p, const ImageInputs& images,
                                           size_t& max_sequence_length) const {
    check_task_supported(supports(task), task, "FLUX.2 klein", class_name_);
    const size_t scale = vae_->scale_factor();
    FamilyDefaults defaults;
    defaults.guidance_scale = kDefaultGuidance;
    defaults.steps = 50;
    defaults.strength = 1.0f;  // image-to-image too: the reference conditions every step, strength has no effect
    defaults.width = defaults.height = kDefaultSampleSize * scale;
    defaults.image2image_size_from_image = true;
    defaults.static_shape = static_shape_ ? &*static_shape_ : nullptr;
    const ResolvedParams r = resolve_common(task, p, images, defaults, 2 * scale,
                                            "twice the VAE scale factor " + std::to_string(scale) + ": FLUX.2 packs 2x2 latent pixels");
    check_static_guidance(defaults.static_shape, static_guided(), !distilled_ && r.guidance > 1.0f, r.guidance);
    if (p.negative_prompt || p.negative_prompt_2 || p.negative_prompt_3)
        throw invalid_param(p.negative_prompt     ? "negative_prompt"
                            : p.negative_prompt_2 ? "negative_prompt_2"
                                                  : "negative_prompt_3",
                            "FLUX.2 klein takes no negative prompt (its guidance, when the model is not distilled, uses the empty "
                            "prompt)");
    refuse_extra_prompts(p, "FLUX.2 klein");
    refuse_taylorseer(p, "FLUX.2 klein");
    check_flow_match_scheduler(p, "FLUX.2 klein");
    check_max_sequence_length(p, 0, kMaxSequenceLength, " for FLUX.2 klein");
    max_sequence_length = static_cast<size_t>(p.max_sequence_length.value_or(kMaxSequenceLength));
    if (static_shape_) check_static_sequence_length(max_sequence_length, kMaxSequenceLength);
    return r;
}

ov::Tensor Flux2KleinPipeline::encode_prompt(const std::string& prompt, size_t max_sequence_length) const {
    return text_encoder_->encode_outputs(prompt, max_sequence_length, kTextEncoderOutputs);
}

ov::Tensor Flux2KleinPipeline::reference_tokens(const ov::Tensor& image, size_t height, size_t width) const {
    const ov::Tensor processed = normalize_image(resize_image_u8(image, height, width));
    ov::Tensor tokens = pack_latents(vae_->encode_mean(processed));
    normalize_packed(tokens);
    return tokens;
}

GenerationResult Flux2KleinPipeline::run(Task task, const GenerationParams& params, const ImageInputs& images,
                                         const GenerationControl& control) const {
    const auto start = Clock::now();
    size_t max_sequence_length = 0;
    const ResolvedParams r = resolve(task, params, images, max_sequence_length);
    const std::vector<AppliedAdapter> applied_adapters = adapters_->choose(params.adapters);
    const size_t scale = vae_->scale_factor(), h = r.height / scale, w = r.width / scale;
    const size_t rows_grid = h / 2, cols_grid = w / 2, seq = rows_grid * cols_grid, features = 4 * latent_channels_;
    const size_t count = r.batch * seq * features;  // the packed latent of the batch
    const bool do_cfg = !distilled_ && r.guidance > 1.0f;

    GenerationResult result = result_for_call(r, SchedulerType::FlowMatchEulerDiscrete);

    // Prompts: [empty prompt x N, prompt x N] with guidance, else [prompt x N].
    const std::vector<ov::Tensor> prompts =
        encode_prompt_rows([&](const std::string& text) { return encode_prompt(text, max_sequence_length); }, params.prompt,
                           do_cfg ? std::optional<std::string>("") : std::nullopt, r.batch, result.metrics);
    const size_t rows = prompts.size(), text_width = prompts.back().get_shape()[1];

    // The noise: one draw over the unpacked batch, then packed.
    RandomGenerator rng(static_cast<uint32_t>(params.rng_seed));
    ov::Tensor noise(ov::element::f32, ov::Shape{r.batch, latent_channels_, h, w});
    rng.fill_normal(noise.data<float>(), noise.get_size());
    ov::Tensor latent = pack_latents(noise);

    ov::Tensor reference;
    if (task == Task::Image2Image) {
        const auto t0 = Clock::now();
        reference = reference_tokens(images.image, r.height, r.width);
        result.metrics.vae_encode_ms += ms_since(t0);
    }
    const size_t ref_seq = reference ? reference.get_shape()[1] : 0, tokens = seq + ref_seq;

    const std::unique_ptr<Scheduler> scheduler =
        scheduler_for_call(scheduler_config_, SchedulerType::FlowMatchEulerDiscrete, scheduler_source_);
    // The shift follows the noise tokens only; strength does not cut the schedule.
    const std::vector<float> timesteps = timesteps_for_call([&] {
        scheduler->set_timesteps(seq, r.steps, 1.0f);
        return scheduler->float_timesteps();
    });

    const Transformer& transformer = transformer_for(task);
    auto request = transformer.model->borrow();
    apply_adapters(transformer, request, applied_adapters, result.metrics);
    ov::Tensor hidden_states = request.input_buffer("hidden_states", ov::Shape{rows, tokens, features});
    ov::Tensor timestep = request.input_buffer("timestep", ov::Shape{rows});
    ov::Tensor text = request.input_buffer("encoder_hidden_states", ov::Shape{rows, max_sequence_length, text_width});
    ov::Tensor txt_ids = request.input_buffer("txt_ids", ov::Shape{rows, max_sequence_length, 4});
    ov::Tensor img_ids = request.input_buffer("img_ids", ov::Shape{rows, tokens, 4});
    std::fill_n(txt_ids.data<float>(), txt_ids.get_size(), 0.0f);
    for (size_t row = 0; row < rows; ++row) {
        std::copy_n(prompts[row].data<const float>(), prompts[row].get_size(), text.data<float>() + row * prompts[row].get_size());
        float* ids = txt_ids.data<float>() + row * max_sequence_length * 4;
        for (size_t l = 0; l < max_sequence_length; ++l) ids[4 * l + 3] = static_cast<float>(l);
        float* image_ids = img_ids.data<float>() + row * tokens * 4;
        write_image_ids(image_ids, rows_grid, cols_grid, 0.0f);
        if (reference) {
            write_image_ids(image_ids + seq * 4, rows_grid, cols_grid, kReferenceTime);
            std::copy_n(reference.data<const float>(), ref_seq * features, hidden_states.data<float>() + (row * tokens + seq) * features);
        }
    }

    const size_t per_image = seq * features;
    std::vector<float> prediction(rows * per_image), velocity(count);
    DenoisingLoop loop;
    loop.num_steps = timesteps.size();
    loop.step = [&](size_t i) {
        const float* x = latent.data<const float>();
        for (size_t row = 0; row < rows; ++row)
            std::copy_n(x + (row % r.batch) * per_image, per_image, hidden_states.data<float>() + row * tokens * features);
        // The transformer takes sigma (timestep / 1000).
        std::fill_n(timestep.data<float>(), rows, timesteps[i] / 1000.0f);
        infer_denoiser(*request, result, "FLUX.2 klein transformer");
        const ov::Tensor output = request->get_output_tensor(0);
        if (output.get_size() != rows * tokens * features)
            throw EngineError(ErrorCode::UnsupportedModel, "the FLUX.2 klein transformer output does not match its input's shape");
        // The noise tokens of every row (the reference tokens' output is not used).
        for (size_t row = 0; row < rows; ++row)
            std::copy_n(output.data<const float>() + row * tokens * features, per_image, prediction.data() + row * per_image);
        apply_guidance(prediction.data(), count, do_cfg, r.guidance, velocity.data());
        const StepResult step = scheduler->step(velocity.data(), latent.data<float>(), count, i, rng);
        std::copy(step.latent.begin(), step.latent.end(), latent.data<float>());
    };
    loop.latent_for_callback = [&] { return unpack_latents(latent, h, w); };
    finish_generation(
        run_denoising_loop(loop, control, result),
        [&] {
            ov::Tensor packed = copy_tensor(latent);
            denormalize_packed(packed);
            return vae_->decode(unpack_latents(packed, h, w));
        },
        start, result);
    return result;
}

}  // namespace ovd
