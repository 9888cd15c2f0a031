#pragma once
// DeepCache (Ma et al., arXiv 2312.00858) for UNet2DConditionModel exports: a UNet's deep features change slowly from
// one denoising step to the next, so a step may reuse the deep part's output from an earlier step and run only the
// shallow part around it: the last `branch + 1` layers of the up path (a layer: one resnet with its attention; a
// block's upsampler belongs to its last layer), conv_out, and what those layers take from the input side through
// their skip connections (conv_in, the first down layers). Branch 0, the shallowest and the paper's choice for
// Stable Diffusion: conv_in, the last up layer, conv_out.
//
// Both graphs are cut from the exported UNet (optimum-intel names every node after its torch module, e.g.
// "__module.up_blocks.3.attentions.2.proj_out/aten::linear/Add", some exports with "model." after "__module."): the
// feature that enters the shallow layers becomes an extra output of the full graph and a Parameter of the shallow
// one, in which the deep part is no longer reachable and so is gone. The full graph's original output is computed as
// before (a test checks it bit for bit against the uncut UNet), so a step that refreshes the cache is an ordinary
// UNet step.
#include <memory>
#include <string>

#include <openvino/openvino.hpp>

namespace ovd {

// The name of the deep feature: the full graph's extra output and the shallow graph's extra input.
inline constexpr const char* kDeepCacheFeature = "deepcache_feature";

// Cuts `unet` for DeepCache at `branch` (0: the shallowest cut, the fastest cached step). `unet` itself gets the
// feature as an extra output; the returned model is the shallow graph. The UNet may already be rewritten (static
// shapes, LoRA states: the shallow graph keeps the states, so the same adapters apply to it). Throws
// EngineError(UnsupportedModel) when the UNet's layers cannot be found or `branch` leaves no deep part.
std::shared_ptr<ov::Model> cut_deepcache_graphs(const std::shared_ptr<ov::Model>& unet, size_t branch);

}  // namespace ovd
