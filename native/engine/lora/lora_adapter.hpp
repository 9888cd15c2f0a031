#pragma once
// A LoRA adapter read from .safetensors: low-rank pairs (A, B) keyed by the layer they modify, with
// the key names normalized the way the oracle normalizes them for the model family:
//  - Stable Diffusion 1.x/2.x/XL: kohya, PEFT, old diffusers and SGM-layout names all end up as
//    "lora_unet.down_blocks..." / "lora_te_...";
//  - FLUX: XLabs and kohya-FLUX names become diffusers "transformer.transformer_blocks.N..." names (fused
//    qkv factors split by rows of B, A shared), kohya's "lora_te1_" becomes "lora_te_"; diffusers names stay;
//  - Stable Diffusion 3: names are used as they are (the oracle passes SD3 adapters unnormalized).
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace ovd {

struct LoraPair {
    std::vector<float> a;  // [rank, in]
    std::vector<float> b;  // [out, rank]
    size_t rank = 0, in = 0, out = 0;
    bool pointwise_conv_shape = false;  // the file stored 4-D 1x1 conv factors
    bool non_pointwise = false;         // a conv kernel larger than 1x1 (not applicable)
};

enum class LoraNaming { StableDiffusion, Flux, Raw };

class LoraAdapter {
public:
    // Reads and normalizes the file. The per-file `.alpha` tensors are read but not applied: the
    // oracle scales by the user's alpha only (no alpha/rank), and so do we.
    static std::shared_ptr<const LoraAdapter> load(const std::string& path, LoraNaming naming = LoraNaming::StableDiffusion);

    const std::string& path() const { return path_; }
    // Sorted by normalized key (the oracle walks them in this order when matching layers).
    const std::map<std::string, LoraPair>& pairs() const { return pairs_; }

private:
    std::string path_;
    std::map<std::string, LoraPair> pairs_;
};

// Exposed for tests: the normalized key of one kohya/PEFT/diffusers layer name (without the lora suffix).
std::string normalize_sd_lora_key(const std::string& key);

}  // namespace ovd
