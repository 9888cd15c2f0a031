#pragma once
// A Qwen decoder LLM used as a text encoder (Z-Image, FLUX.2 klein: Qwen3; Qwen-Image: Qwen2.5-VL's language model).
// For Qwen3 the prompt is wrapped in the Qwen3 chat format (a user turn, then the assistant turn with an empty think
// block), tokenized, cut and padded to the maximum sequence length and masked. Z-Image reads the exported model's
// first output (the second-to-last hidden state) on the real tokens; FLUX.2 klein reads several named hidden-state
// outputs on every padded position. Qwen-Image renders its own template and reads the first output (encode_text).
#include <memory>
#include <string>
#include <vector>

#include "base/ir_model.hpp"
#include "base/model_folder.hpp"
#include "models/tokenizer.hpp"

namespace ovd {

class Qwen3TextEncoder {
public:
    // Reads text_encoder/ and tokenizer/. Refuses a tokenizer whose chat template is not Qwen3's (we render
    // that format ourselves; the oracle renders the template with enable_thinking = false). `family` names the
    // model in that refusal. A `static_length` compiles the model for ids [static_batch, static_length] (static shapes).
    static std::shared_ptr<Qwen3TextEncoder> load(const ModelFolder& folder, const std::string& device, const PropertyMap& properties,
                                                  const std::string& family, size_t static_length = 0, size_t static_batch = 1);
    // The same without the chat-template check: for a family that renders its own prompt template.
    static std::shared_ptr<Qwen3TextEncoder> load_for_template(const ModelFolder& folder, const std::string& device,
                                                               const PropertyMap& properties, size_t static_length = 0,
                                                               size_t static_batch = 1);

    // The Qwen3 chat rendering of one user message, as the template gives it with add_generation_prompt and
    // enable_thinking = false.
    static std::string chat_prompt(const std::string& prompt);

    // The first output's rows [L, D] for the chat-formatted prompt's first L = min(tokens, max_sequence_length)
    // tokens (the ids are padded to max_sequence_length and masked, as the oracle; only the real rows are returned).
    ov::Tensor encode(const std::string& prompt, size_t max_sequence_length) const;
    // The same for several prompts in one inference (a batch of prompts.size() rows), one tensor per prompt.
    std::vector<ov::Tensor> encode_batch(const std::vector<std::string>& prompts, size_t max_sequence_length) const;

    // The outputs named `outputs` (each [1, max_sequence_length, D]) side by side per token:
    // [max_sequence_length, D * outputs.size()], padded rows included. max_sequence_length 0 gives [0, D * n]
    // without running the model.
    ov::Tensor encode_outputs(const std::string& prompt, size_t max_sequence_length, const std::vector<std::string>& outputs) const;

    // The first output's rows from `drop` on, [L - drop, D], for `text` tokenized as it is (no chat format), its ids cut
    // to L <= `max_tokens` and padded to `max_tokens` and masked. Throws an ERR_INVALID_ARGUMENT when L <= drop.
    ov::Tensor encode_text(const std::string& text, size_t max_tokens, size_t drop) const;
    // The same for several texts in one inference (a batch of texts.size() rows), one tensor per text.
    std::vector<ov::Tensor> encode_text_batch(const std::vector<std::string>& texts, size_t max_tokens, size_t drop) const;

private:
    static std::shared_ptr<Qwen3TextEncoder> load_model(const ModelFolder& folder, const std::string& device, const PropertyMap& properties,
                                                        size_t static_length, size_t static_batch);
    // Runs the model on the token lists cut and padded to max_tokens and masked, one row each; returns each row's
    // number of real tokens.
    std::vector<size_t> infer(InferRequestPool::Lease& request, std::vector<std::vector<int64_t>> tokens, size_t max_tokens) const;
    // The first output's rows from `drop` to each row's real length, per token list.
    std::vector<ov::Tensor> encode_rows(const std::vector<std::vector<int64_t>>& tokens, size_t max_tokens, size_t drop) const;

    std::shared_ptr<IrModel> model_;
    std::shared_ptr<Tokenizer> tokenizer_;
};

}  // namespace ovd
