#pragma once
// A text tokenizer run from its openvino_tokenizers IR (custom ops from the tokenizers extension).
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "base/ir_model.hpp"

namespace ovd {

class Tokenizer {
public:
    // Reads <dir>/openvino_tokenizer.xml; compiled on CPU with no properties, as the oracle does.
    static std::shared_ptr<Tokenizer> load(const std::filesystem::path& dir);

    // Ids with special tokens and without truncation or padding.
    std::vector<int64_t> encode(const std::string& text) const;
    int64_t pad_token_id() const { return pad_token_id_; }

private:
    std::shared_ptr<IrModel> model_;
    int64_t pad_token_id_ = 0;
};

}  // namespace ovd
