#include "pipelines/generation_params.hpp"

#include "base/errors.hpp"

namespace ovd {

const std::vector<ParamField>& generation_param_fields() {
    using K = ParamKind;
    using P = GenerationParams;
    using V = ParamValue;
    static const std::vector<ParamField> fields = {
        {"prompt_2", K::String, [](P& p, const V& v) { p.prompt_2 = v.text; }},
        {"prompt_3", K::String, [](P& p, const V& v) { p.prompt_3 = v.text; }},
        {"negative_prompt", K::String, [](P& p, const V& v) { p.negative_prompt = v.text; }},
        {"negative_prompt_2", K::String, [](P& p, const V& v) { p.negative_prompt_2 = v.text; }},
        {"negative_prompt_3", K::String, [](P& p, const V& v) { p.negative_prompt_3 = v.text; }},
        {"width", K::Integer, [](P& p, const V& v) { p.width = v.integer; }},
        {"height", K::Integer, [](P& p, const V& v) { p.height = v.integer; }},
        {"num_inference_steps", K::Integer, [](P& p, const V& v) { p.num_inference_steps = v.integer; }},
        {"guidance_scale", K::Number, [](P& p, const V& v) { p.guidance_scale = static_cast<float>(v.number); }},
        {"guidance_rescale", K::Number,
         [](P& p, const V& v) {
             if (!(v.number >= 0 && v.number <= 1)) throw invalid_param("guidance_rescale", "guidance_rescale must be between 0 and 1");
             p.guidance_rescale = static_cast<float>(v.number);
         }},
        {"deepcache_interval", K::Integer,
         [](P& p, const V& v) {
             if (v.integer < 1) throw invalid_param("deepcache_interval", "deepcache_interval must be >= 1 (1: no caching)");
             p.deepcache_interval = v.integer;
         }},
        {"num_images_per_prompt", K::Integer, [](P& p, const V& v) { p.num_images_per_prompt = v.integer; }},
        {"rng_seed", K::Integer,
         [](P& p, const V& v) {
             if (v.integer < 0) throw invalid_param("rng_seed", "rng_seed must be a non-negative integer");
             p.rng_seed = static_cast<uint64_t>(v.integer);
         }},
        {"strength", K::Number, [](P& p, const V& v) { p.strength = static_cast<float>(v.number); }},
        {"max_sequence_length", K::Integer, [](P& p, const V& v) { p.max_sequence_length = v.integer; }},
        {"scheduler", K::Scheduler,
         [](P& p, const V& v) {
             try {
                 p.scheduler = parse_scheduler_type(v.text);
             } catch (const std::exception& e) {
                 throw invalid_param("scheduler", e.what());
             }
         }},
        {"taylorseer", K::TaylorSeer,
         [](P& p, const V& v) {
             p.taylorseer = v.taylorseer;
             p.disable_taylorseer = !v.taylorseer;
         }},
    };
    return fields;
}

const char* param_kind_name(ParamKind kind) {
    switch (kind) {
        case ParamKind::String: return "string";
        case ParamKind::Integer: return "int";
        case ParamKind::Number: return "float";
        case ParamKind::Scheduler: return "scheduler";
        case ParamKind::TaylorSeer: return "taylorseer";
    }
    return "unknown";
}

}  // namespace ovd
