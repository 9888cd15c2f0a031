#pragma once
// A T5 text encoder (T5EncoderModel, SD3's text_encoder_3 and FLUX's text_encoder_2) with its tokenizer.
#include <memory>
#include <string>

#include "base/ir_model.hpp"
#include "base/model_folder.hpp"
#include "models/tokenizer.hpp"

namespace ovd {

class T5Encoder {
public:
    // `component` is e.g. "text_encoder_3"; its tokenizer is the matching "tokenizer_3". With a
    // `static_batch`, the ids input is compiled as [static_batch, static_length] (the oracle's reshape).
    static std::shared_ptr<T5Encoder> load(const ModelFolder& folder, const std::string& component, const std::string& device,
                                           const PropertyMap& properties, size_t static_batch = 0, size_t static_length = 0);

    // One inference over [negative, positive] when `with_negative`, else [positive], each row the
    // prompt's ids cut or padded (with the pad id) to `max_sequence_length`, as the oracle does (no
    // attention mask). Returns the last hidden state [B, max_sequence_length, D], copied out.
    ov::Tensor encode(const std::string& positive, const std::string& negative, bool with_negative, size_t max_sequence_length) const;

private:
    std::shared_ptr<IrModel> model_;
    std::shared_ptr<Tokenizer> tokenizer_;
};

}  // namespace ovd
