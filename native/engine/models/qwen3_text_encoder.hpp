#pragma once
// Z-Image's text encoder: a Qwen3 decoder LLM used as an encoder. The prompt is wrapped in the Qwen3 chat format
// (a user turn, then the assistant turn with an empty think block), and the exported model returns the
// second-to-last hidden state; the pipeline takes the rows of the real tokens.
#include <memory>
#include <string>

#include "base/ir_model.hpp"
#include "base/model_folder.hpp"
#include "models/tokenizer.hpp"

namespace ovd {

class Qwen3TextEncoder {
public:
    // Reads text_encoder/ and tokenizer/. Refuses a tokenizer whose chat template is not Qwen3's (we render
    // that format ourselves; the oracle renders the template with enable_thinking = false).
    static std::shared_ptr<Qwen3TextEncoder> load(const ModelFolder& folder, const std::string& device, const PropertyMap& properties);

    // The Qwen3 chat rendering of one user message, as the template gives it with add_generation_prompt and
    // enable_thinking = false.
    static std::string chat_prompt(const std::string& prompt);

    // The hidden states [L, D] of the chat-formatted prompt's first L = min(tokens, max_sequence_length) tokens.
    // Like the oracle, the ids are padded to max_sequence_length and masked; only the real rows are returned.
    ov::Tensor encode(const std::string& prompt, size_t max_sequence_length) const;

private:
    std::shared_ptr<IrModel> model_;
    std::shared_ptr<Tokenizer> tokenizer_;
};

}  // namespace ovd
