#pragma once
// A CLIP text encoder (CLIPTextModel or CLIPTextModelWithProjection) with its tokenizer.
#include <memory>
#include <string>
#include <vector>

#include "base/ir_model.hpp"
#include "base/model_folder.hpp"
#include "lora/adapter_set.hpp"
#include "models/tokenizer.hpp"

namespace ovd {

class ClipTextEncoder {
public:
    // `component` is e.g. "text_encoder_2"; its tokenizer is the matching "tokenizer_2".
    // With `adapters`, the graph is prepared for LoRA under `lora_prefix` before it compiles. A
    // `static_batch` (1 or 2) compiles it for input ids [static_batch, context length], as the
    // oracle's reshape does.
    static std::shared_ptr<ClipTextEncoder> load(const ModelFolder& folder, const std::string& component, const std::string& device,
                                                 const PropertyMap& properties, AdapterSet* adapters = nullptr,
                                                 const std::string& lora_prefix = {}, size_t static_batch = 0);

    // One inference over [negative, positive] when `with_negative`, else [positive]. Prompts longer
    // than the context are cut to its first ids (no trailing EOS), as the oracle does. A static
    // batch-2 model without `with_negative` still reads [negative, positive] and returns the positive
    // row, as the oracle. Returns every output, copied out of the request. Time spent setting LoRA
    // states is added to `adapter_apply_ms` when given.
    std::vector<ov::Tensor> encode(const std::string& positive, const std::string& negative, bool with_negative,
                                   const std::vector<AppliedAdapter>* adapters = nullptr, double* adapter_apply_ms = nullptr) const;

    // Output index of the penultimate hidden state (hidden_states[-2]).
    size_t penultimate_hidden_index() const { return num_hidden_layers_ + 1; }
    size_t context_length() const { return context_length_; }
    const IrModel& model() const { return *model_; }

private:
    std::shared_ptr<IrModel> model_;
    std::shared_ptr<Tokenizer> tokenizer_;
    std::shared_ptr<LoraController> lora_;
    size_t context_length_ = 77;
    size_t num_hidden_layers_ = 12;
};

}  // namespace ovd
