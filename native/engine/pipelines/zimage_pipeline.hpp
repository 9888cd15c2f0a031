#pragma once
// Z-Image (ZImagePipeline, e.g. Z-Image-Turbo): a Qwen3 text encoder, a single-stream transformer over 2x2
// latent patches with the caption's tokens, the FLUX.1 VAE, and flow-matching Euler. Text-to-image and
// image-to-image, as the oracle (it has no Z-Image inpainting).
#include <optional>
#include <string>

#include "base/model_folder.hpp"
#include "models/autoencoder_kl.hpp"
#include "models/qwen3_text_encoder.hpp"
#include "pipelines/flow_transformer_pipeline.hpp"

namespace ovd {

class ZImagePipeline : public FlowTransformerPipeline {
public:
    ZImagePipeline(const ModelFolder& folder, const LoadConfig& load_config);

    ov::Tensor decode(const ov::Tensor& latent) const override;
    bool supports(Task task) const override;

protected:
    GenerationResult run(Task task, const GenerationParams& params, const ImageInputs& images,
                         const GenerationControl& control) const override;

private:
    ResolvedParams resolve(Task task, const GenerationParams& params, const ImageInputs& images,
                           size_t& max_sequence_length) const override;
    std::string size_rule(size_t scale) const;
    // Whether the static shapes (if any) were made for classifier-free guidance (guidance_scale above 0 at load).
    bool static_guided() const;

    std::optional<StaticShape> static_shape_;  // set: every submodel compiled for these shapes
    size_t in_channels_ = 16;
    size_t patch_size_ = 2;
    std::shared_ptr<Qwen3TextEncoder> text_encoder_;
    std::shared_ptr<IrModel> transformer_;
    std::shared_ptr<AutoencoderKL> vae_;
};

// The transformer's caption and position inputs for `captions` (each [L_i, D], the real tokens) and an image of
// `rows` x `cols` patches, as the exported ZImageTransformer2DModel reads them: captions padded to a multiple of 32
// positions (the model puts its learned pad token there), the batch to the longest; the additive mask is 0 on real
// tokens; caption positions count from 1 over the padded length (0 marks batch padding); image positions
// (frame, row, col) start after the caption's padded length, in a token list padded to a multiple of 32.
struct ZImageTextInputs {
    ov::Tensor encoder_hidden_states;   // f32 [B, M, D]
    ov::Tensor encoder_attention_mask;  // f32 [B, M]
    ov::Tensor txt_ids;                 // i32 [B, M, 3]
    ov::Tensor img_ids;                 // i32 [B, rows*cols rounded up to 32, 3]
};
// A `text_length` pads every caption's batch row to that many positions instead (static shapes).
ZImageTextInputs zimage_transformer_inputs(const std::vector<ov::Tensor>& captions, size_t rows, size_t cols, size_t text_length = 0);

}  // namespace ovd
