#pragma once
// Applies LoRA adapters to one submodel (a text encoder or the UNet).
//
// Dynamic mode (the default, as the oracle's): before compiling, every MatMul/Convolution layer that
// some registered adapter modifies gets a side branch y + ((x A^T) * alpha) B^T whose A, alpha and B
// are state variables. Choosing adapters and alphas per call is then only a matter of setting the
// states on the infer request; nothing recompiles. Layers without a selected adapter get an
// all-zero rank-1 state, which adds exactly nothing.
// Fuse mode: W' = W + sum_i alpha_i B_i A_i is written into the weights once, at load.
#include <memory>
#include <string>
#include <vector>

#include <openvino/openvino.hpp>

#include "base/ir_model.hpp"
#include "lora/lora_adapter.hpp"

namespace ovd {

// An adapter choice (AdapterChoice) resolved against the registered adapters: which one, at which alpha.
struct AppliedAdapter {
    size_t index;  // into the adapters registered on the pipeline
    float alpha;
};

class LoraController {
public:
    // Rewrites `model` for the registered adapters; `prefix` is the adapters' key prefix for this
    // submodel ("lora_unet", "lora_te", "lora_te1", "lora_te2"). Returns null when nothing matched.
    static std::shared_ptr<LoraController> attach(const std::shared_ptr<ov::Model>& model,
                                                  const std::vector<std::shared_ptr<const LoraAdapter>>& adapters,
                                                  const std::string& prefix, std::vector<std::string>& matched_keys);
    // Fuses the chosen adapters into the weights of `model` (no state, no per-call switching).
    static void fuse(const std::shared_ptr<ov::Model>& model, const std::vector<std::shared_ptr<const LoraAdapter>>& adapters,
                     const std::vector<AppliedAdapter>& choices, const std::string& prefix, std::vector<std::string>& matched_keys);

    // Sets the states of the leased request for `choices`, unless it already holds them. Returns the
    // milliseconds spent (0 when nothing was set).
    double apply(InferRequestPool::Lease& request, const std::vector<AppliedAdapter>& choices) const;

    size_t layer_count() const { return layers_.size(); }

private:
    struct Layer {
        std::string state_a, state_alpha, state_b;
        size_t in = 0, out = 0;
        std::vector<const LoraPair*> pairs;  // per registered adapter; null where it does not touch this layer
    };
    std::vector<Layer> layers_;
};

// A stable text for a set of choices, to tell whether a request already holds it.
std::string choices_tag(const std::vector<AppliedAdapter>& choices);

}  // namespace ovd
