#pragma once
// The LoRA adapters registered on one pipeline: loads them, prepares each submodel's graph
// (dynamic states or fused weights), turns a call's adapter names into choices, and reports
// which adapter keys found no layer.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lora/lora_controller.hpp"
#include "pipelines/diffusion_model.hpp"

namespace ovd {

class AdapterSet {
public:
    AdapterSet(const std::vector<AdapterSpec>& specs, LoraMode mode, LoraNaming naming = LoraNaming::StableDiffusion);

    bool empty() const { return adapters_.empty(); }
    // Rewrites a submodel before it is compiled; `prefix` is its key prefix ("lora_unet", "lora_te", ...).
    // Returns the controller that sets its states per call (null in fuse mode or when nothing matched).
    std::shared_ptr<LoraController> prepare(const std::shared_ptr<ov::Model>& model, const std::string& prefix);

    // A call's adapter names and alphas -> choices; unknown names are an ERR_INVALID_ARGUMENT.
    std::vector<AppliedAdapter> choose(const std::vector<AdapterChoice>& requests) const;

    // Call after every submodel was prepared.
    std::vector<AdapterReport> report() const;

private:
    std::vector<AdapterSpec> specs_;
    std::vector<std::shared_ptr<const LoraAdapter>> adapters_;
    LoraMode mode_;
    std::vector<std::string> matched_keys_;  // "<adapter index>:<key>"
};

}  // namespace ovd
