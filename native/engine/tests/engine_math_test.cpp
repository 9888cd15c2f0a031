// Standalone checks of the engine's pure math: RNG, JSON, schedulers, guidance.
// Golden values marked "oracle" were produced by the openvino-genai 2026.4.1 wheel's own C++ schedulers
// (called directly through its shared library) on the inputs built by x_init / eps_at below.
//
// Built and run by test/engine-math.test.js (g++, no OpenVINO needed: these sources are plain C++17).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "base/json.hpp"
#include "base/random_generator.hpp"
#include "pipelines/guidance.hpp"
#include "schedulers/scheduler.hpp"

using namespace ovd;

namespace {

int g_passed = 0, g_failed = 0;

void check(bool ok, const std::string& what, int line) {
    if (ok) {
        ++g_passed;
    } else {
        ++g_failed;
        std::printf("FAIL (line %d): %s\n", line, what.c_str());
    }
}
#define CHECK(cond) check((cond), #cond, __LINE__)
#define CHECK_MSG(cond, msg) check((cond), msg, __LINE__)

bool bits_equal(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

bool bits_equal(const std::vector<float>& a, const std::vector<float>& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (!bits_equal(a[i], b[i])) return false;
    return true;
}

// Runs fn and checks that it throws E whose message contains every fragment.
template <typename E>
void expect_throw(const std::function<void()>& fn, const std::vector<std::string>& fragments, int line) {
    try {
        fn();
    } catch (const E& e) {
        const std::string msg = e.what();
        for (const auto& f : fragments) check(msg.find(f) != std::string::npos, "message '" + msg + "' should contain '" + f + "'", line);
        ++g_passed;
        return;
    } catch (const std::exception& e) {
        check(false, std::string("threw the wrong exception type: ") + e.what(), line);
        return;
    }
    check(false, "expected an exception", line);
}
#define EXPECT_THROW(E, stmt, ...) expect_throw<E>([&] { stmt; }, {__VA_ARGS__}, __LINE__)

std::string write_temp(const std::string& name, const std::string& text) {
    const auto path = std::filesystem::temp_directory_path() / ("ovd_engine_math_" + name);
    std::ofstream(path, std::ios::binary) << text;
    return path.string();
}

std::unique_ptr<Scheduler> scheduler_from(const std::string& json, SchedulerType type = SchedulerType::Auto) {
    return create_scheduler(Json::parse(json), type, "test.json");
}

// ---------------------------------------------------------------- RNG

void test_rng() {
    const std::vector<std::pair<uint32_t, std::vector<float>>> vectors = {
        {42, {1.22192132f, -0.516964138f, 0.86963594f, 0.721332669f, 1.58855629f, 1.61821711f, -0.187124684f, -1.18830872f}},
        {0, {2.21220636f, 1.16307867f, 0.774003804f, 0.483804613f, 1.04344034f, 0.299563468f, 1.18392551f, 0.153025463f}},
        {69, {-0.774594545f, -1.60355866f, 0.390699387f, 1.26015115f, -1.00389397f, -0.444434971f, 0.437437713f, 0.351346582f}},
    };
    for (const auto& [seed, expected] : vectors) {
        RandomGenerator rng(seed);
        std::vector<float> got(expected.size());
        for (float& v : got) v = rng.next();
        CHECK_MSG(bits_equal(got, expected), "first normals for seed " + std::to_string(seed));
        RandomGenerator filled(seed);
        std::vector<float> block(expected.size());
        filled.fill_normal(block.data(), block.size());
        CHECK_MSG(bits_equal(block, expected), "fill_normal equals next() for seed " + std::to_string(seed));
    }

    // Reseeding keeps the cached second value of a pair: after one draw the next value is still seed 42's second.
    RandomGenerator rng(42);
    rng.next();
    rng.seed(7);
    CHECK(bits_equal(rng.next(), -0.516964138f));
    // seed() is taken modulo 2^32.
    RandomGenerator a(5), b(0);
    b.seed((uint64_t(1) << 32) + 5);
    CHECK(bits_equal(a.next(), b.next()));

#ifdef __GLIBCXX__
    // The explicit polar method must equal libstdc++'s normal_distribution<float>, including the reseed behaviour.
    for (uint32_t seed : {0u, 42u, 69u}) {
        std::mt19937 mt(seed);
        std::normal_distribution<float> normal(0.0f, 1.0f);
        RandomGenerator mine(seed);
        bool same = true;
        for (int i = 0; i < 1000000 && same; ++i) same = bits_equal(mine.next(), normal(mt));
        mt.seed(seed + 1000);
        mine.seed(seed + 1000);
        for (int i = 0; i < 1001 && same; ++i) same = bits_equal(mine.next(), normal(mt));
        CHECK_MSG(same, "1e6 draws equal libstdc++ normal_distribution<float> for seed " + std::to_string(seed));
    }
#else
    std::printf("note: not built with libstdc++, skipping the std::normal_distribution comparison\n");
#endif
}

// ---------------------------------------------------------------- JSON

void test_json() {
    const Json j =
        Json::parse(R"( {"a": 1, "b": [true, false, null, -2.5e-3, "x\"y\\z\n\u00e9\ud83d\ude00"], "c": {"d": 1000.0, "e": ""}} )");
    CHECK(j.is_object() && j.size() == 3);
    CHECK(j.at("a").is_integer() && j.at("a").as_int() == 1);
    CHECK(j.at("b").size() == 5 && j.at("b").at(0).as_bool() && !j.at("b").at(1).as_bool() && j.at("b").at(2).is_null());
    CHECK(j.at("b").at(3).as_double() == -2.5e-3 && !j.at("b").at(3).is_integer());
    CHECK(j.at("b").at(4).as_string() == "x\"y\\z\n\xC3\xA9\xF0\x9F\x98\x80");  // \u escapes become UTF-8
    CHECK(j.at("c").at("d").as_double() == 1000.0 && !j.at("c").at("d").is_integer());
    CHECK(j.has("a") && !j.has("zz"));

    // dump() round trip: parse(dump(x)) == x, and dump is stable.
    const std::string dumped = j.dump();
    CHECK(Json::parse(dumped) == j);
    CHECK(Json::parse(dumped).dump() == dumped);
    CHECK(Json::parse("[0.1,1e300,-0.0,12345678901]").dump() == "[0.1,1e+300,-0,12345678901]");
    CHECK(Json::parse("\"\\u0001\\t\"").dump() == "\"\\u0001\\t\"");
    Json built = Json::object();
    built.set("k", Json::array({Json(1), Json(2.5), Json("s"), Json(), Json(true)}));
    CHECK(built.dump() == R"({"k":[1,2.5,"s",null,true]})");

    // get_or: missing or null -> fallback (as genai ignores null keys); numbers convert; wrong types throw.
    const Json cfg = Json::parse(R"({"n": 1000, "f": 0.00085, "flag": true, "nul": null, "s": "linear", "v": [1, 2.5]})");
    CHECK(cfg.get_or<size_t>("n", 7) == 1000);
    CHECK(cfg.get_or<size_t>("missing", 7) == 7);
    CHECK(cfg.get_or<size_t>("nul", 7) == 7);
    CHECK(cfg.get_or<float>("f", 0.0f) == 0.00085f);
    CHECK(cfg.get_or<bool>("flag", false));
    CHECK(cfg.get_or<std::string>("s", "") == "linear");
    CHECK((cfg.get_or<std::vector<float>>("v", {}) == std::vector<float>{1.0f, 2.5f}));
    EXPECT_THROW(std::invalid_argument, cfg.get_or<bool>("n", false), "'n'");
    EXPECT_THROW(std::invalid_argument, cfg.get_or<double>("s", 0.0), "'s'");
    EXPECT_THROW(std::out_of_range, cfg.at("missing"), "missing");
    EXPECT_THROW(std::invalid_argument, cfg.at("f").as_int(), "integer");

    // Malformed input: the message names the source and the byte offset.
    EXPECT_THROW(std::runtime_error, Json::parse("{\"a\":1,}", "cfg.json"), "cfg.json", "at byte 7");
    EXPECT_THROW(std::runtime_error, Json::parse("[1 2]"), "at byte 3");
    EXPECT_THROW(std::runtime_error, Json::parse("01"), "leading zero");
    EXPECT_THROW(std::runtime_error, Json::parse("{'a':1}"), "string key");
    EXPECT_THROW(std::runtime_error, Json::parse("\"abc"), "unterminated");
    EXPECT_THROW(std::runtime_error, Json::parse("\"\\ud800\""), "surrogate");
    EXPECT_THROW(std::runtime_error, Json::parse("\"a\tb\""), "control character");
    EXPECT_THROW(std::runtime_error, Json::parse("[1] x"), "trailing");
    EXPECT_THROW(std::runtime_error, Json::parse("tru"), "true");
    EXPECT_THROW(std::runtime_error, Json::parse("1."), "decimal point");
    EXPECT_THROW(std::runtime_error, Json::parse(""), "end of input");
    EXPECT_THROW(std::runtime_error, Json::parse(std::string(600, '[')), "too deep");
    const std::string bad = write_temp("bad.json", "{\n  \"x\": [1, 2,, 3]\n}");
    EXPECT_THROW(std::runtime_error, Json::parse_file(bad), bad, "at byte 15");
    EXPECT_THROW(std::runtime_error, Json::parse_file(bad + ".missing"), "cannot open");
    CHECK(Json::parse_file(write_temp("ok.json", "\xEF\xBB\xBF{\"a\":[]}")).at("a").size() == 0);
}

// ---------------------------------------------------------------- scheduler API and validation

void test_scheduler_types_and_validation() {
    CHECK(parse_scheduler_type("euler_discrete") == SchedulerType::EulerDiscrete);
    CHECK(parse_scheduler_type("Flow_Match_Euler_Discrete") == SchedulerType::FlowMatchEulerDiscrete);
    CHECK(parse_scheduler_type("LMS_DISCRETE") == SchedulerType::DDIM);
    CHECK(parse_scheduler_type("auto") == SchedulerType::Auto);
    EXPECT_THROW(std::invalid_argument, parse_scheduler_type("karras"), "karras", "EULER_ANCESTRAL_DISCRETE", "PNDM");
    CHECK(std::string(scheduler_type_name(SchedulerType::LCM)) == "LCM");
    CHECK(parse_scheduler_type("dpmpp_2m_sde_karras") == SchedulerType::DPMSolverPP2MSDEKarras);
    CHECK(std::string(scheduler_type_name(SchedulerType::Heun)) == "HEUN");
    CHECK(scheduler_type_names().front() == "AUTO" && scheduler_type_names().size() == 16);
    // A model takes the schedulers of its folder's kind: UNet folders every discrete one, SD3/FLUX flow matching.
    const auto unet_names = scheduler_names_like(SchedulerType::PNDM),
               flow_names = scheduler_names_like(SchedulerType::FlowMatchEulerDiscrete);
    CHECK(unet_names.size() == 15 && std::count(unet_names.begin(), unet_names.end(), "UNIPC") == 1 &&
          std::count(unet_names.begin(), unet_names.end(), "FLOW_MATCH_EULER_DISCRETE") == 0);
    CHECK((flow_names == std::vector<std::string>{"AUTO", "FLOW_MATCH_EULER_DISCRETE"}));
    CHECK(scheduler_names_for_class("PNDMScheduler") == unet_names);
    CHECK((scheduler_names_for_class("SomeNewScheduler") == std::vector<std::string>{"AUTO"}));
    // A DPMSolverMultistepScheduler folder config names its variant by its own fields.
    CHECK(scheduler_from(R"({"_class_name":"DPMSolverMultistepScheduler"})")->type() == SchedulerType::DPMSolverPP2M);
    CHECK(scheduler_from(R"({"_class_name":"DPMSolverMultistepScheduler","algorithm_type":"sde-dpmsolver++","use_karras_sigmas":true})")
              ->type() == SchedulerType::DPMSolverPP2MSDEKarras);
    CHECK(scheduler_from(R"({"_class_name":"UniPCMultistepScheduler"})")->type() == SchedulerType::UniPC);
    CHECK(scheduler_from(R"({"_class_name":"HeunDiscreteScheduler"})")->type() == SchedulerType::Heun);
    EXPECT_THROW(std::invalid_argument, scheduler_from(R"({"_class_name":"DPMSolverMultistepScheduler","solver_order":3})"),
                 "solver_order");
    EXPECT_THROW(std::invalid_argument, scheduler_from(R"({"_class_name":"DPMSolverMultistepScheduler","algorithm_type":"dpmsolver"})"),
                 "algorithm_type", "dpmsolver");
    EXPECT_THROW(std::invalid_argument, scheduler_from(R"({"_class_name":"UniPCMultistepScheduler","solver_type":"bh1"})"), "solver_type");
    EXPECT_THROW(std::invalid_argument, scheduler_from(R"({"_class_name":"HeunDiscreteScheduler","use_karras_sigmas":true})"),
                 "use_karras_sigmas");
    // An explicit name sets the solver; the folder's config (here PNDM's) gives the betas and spacing.
    auto dpm = scheduler_from(R"({"_class_name":"PNDMScheduler","beta_schedule":"scaled_linear","beta_start":0.00085,"beta_end":0.012,)"
                              R"("skip_prk_steps":true,"steps_offset":1,"timestep_spacing":"leading"})",
                              SchedulerType::DPMSolverPP2MKarras);
    dpm->set_timesteps(20, 1.0f);
    CHECK(dpm->type() == SchedulerType::DPMSolverPP2MKarras && dpm->timesteps().size() == 20 && dpm->timesteps().front() == 999 &&
          dpm->init_noise_sigma() == 1.0f);
    auto heun = scheduler_from(R"({"_class_name":"EulerDiscreteScheduler"})", SchedulerType::Heun);
    heun->set_timesteps(5, 1.0f);
    size_t heun_steps = 0;
    for (size_t i = 0; i < heun->timesteps().size(); ++i) heun_steps += heun->completes_step(i) ? 1 : 0;
    CHECK(heun->timesteps().size() == 9 && heun_steps == 5);  // 2N - 1 denoiser calls, N steps

    CHECK(scheduler_from(R"({"_class_name":"LMSDiscreteScheduler","clip_sample":false})")->type() == SchedulerType::DDIM);
    // An explicit type overrides _class_name and reads the same JSON.
    CHECK(scheduler_from(R"({"_class_name":"DDIMScheduler","skip_prk_steps":true})", SchedulerType::PNDM)->type() == SchedulerType::PNDM);
    EXPECT_THROW(std::invalid_argument, scheduler_from(R"({"_class_name":"KarrasVeScheduler"})"), "_class_name", "KarrasVeScheduler",
                 "test.json");
    EXPECT_THROW(std::invalid_argument, scheduler_from(R"({"beta_start":0.1})"), "_class_name", "test.json");
    EXPECT_THROW(std::invalid_argument, scheduler_from(R"({"_class_name":"DDIMScheduler"})"), "clip_sample", "test.json");
    EXPECT_THROW(std::invalid_argument, scheduler_from(R"({"_class_name":"DDIMScheduler","clip_sample":false,"thresholding":true})"),
                 "thresholding");
    EXPECT_THROW(std::invalid_argument, scheduler_from(R"({"_class_name":"PNDMScheduler"})"), "skip_prk_steps", "test.json");
    EXPECT_THROW(std::invalid_argument, scheduler_from(R"({"_class_name":"EulerDiscreteScheduler","beta_schedule":"squaredcos_cap_v2"})"),
                 "beta_schedule", "squaredcos_cap_v2", "test.json");
    EXPECT_THROW(std::invalid_argument, scheduler_from(R"({"_class_name":"EulerDiscreteScheduler","beta_schedule":"cosine"})"),
                 "beta_schedule", "cosine");
    EXPECT_THROW(std::invalid_argument, scheduler_from(R"({"_class_name":"EulerDiscreteScheduler","use_karras_sigmas":true})"),
                 "use_karras_sigmas", "test.json");
    EXPECT_THROW(std::invalid_argument, scheduler_from(R"({"_class_name":"EulerDiscreteScheduler","timestep_spacing":"even"})"),
                 "timestep_spacing", "even");
    EXPECT_THROW(std::invalid_argument, scheduler_from(R"({"_class_name":"EulerAncestralDiscreteScheduler","prediction_type":"sample"})"),
                 "prediction_type");
    EXPECT_THROW(std::invalid_argument, scheduler_from(R"({"_class_name":"EulerDiscreteScheduler","num_train_timesteps":"many"})"),
                 "num_train_timesteps", "test.json");
    EXPECT_THROW(std::invalid_argument, scheduler_from(R"({"_class_name":"LCMScheduler","prediction_type":"v_prediction"})"),
                 "prediction_type");
    // Null and empty-string values keep the defaults, as in the oracle.
    CHECK(scheduler_from(R"({"_class_name":"EulerDiscreteScheduler","steps_offset":null,"timestep_spacing":""})") != nullptr);

    const std::string bad = write_temp("bad_scheduler.json", "{\"_class_name\": \"DDIMScheduler\",}");
    EXPECT_THROW(std::runtime_error, create_scheduler(bad), bad, "at byte");
    const std::string ddim = write_temp("ddim.json", R"({"_class_name":"DDIMScheduler"})");
    EXPECT_THROW(std::invalid_argument, create_scheduler(ddim), "clip_sample", ddim);

    // Strength that leaves no step.
    auto d = scheduler_from(R"({"_class_name":"DDIMScheduler","clip_sample":false,"steps_offset":1})");
    EXPECT_THROW(std::invalid_argument, d->set_timesteps(10, 0.05f), "strength");
    auto flow = scheduler_from(R"({"_class_name":"FlowMatchEulerDiscreteScheduler","shift":3.0})");
    flow->set_timesteps(4, 0.0f);
    EXPECT_THROW(std::invalid_argument, flow->float_timesteps(), "strength");
    EXPECT_THROW(std::logic_error, flow->timesteps(), "integer timesteps");
    EXPECT_THROW(std::logic_error, d->set_timesteps(4096, 4, 1.0f), "FlowMatch");
    auto dyn = scheduler_from(R"({"_class_name":"FlowMatchEulerDiscreteScheduler","use_dynamic_shifting":true})");
    EXPECT_THROW(std::invalid_argument, dyn->set_timesteps(4, 1.0f), "use_dynamic_shifting");
}

// ---------------------------------------------------------------- documented timestep schedules

const char* kSdxlEuler =
    R"({"_class_name":"EulerDiscreteScheduler","beta_start":0.00085,"beta_end":0.012,"beta_schedule":"scaled_linear","steps_offset":1,"timestep_spacing":"leading"})";

void test_timesteps() {
    // TRAILING accumulates float error: N=9 gives N+1 timesteps ending in -1 (see docs).
    auto ddim = scheduler_from(R"({"_class_name":"DDIMScheduler","clip_sample":false,"timestep_spacing":"trailing"})");
    ddim->set_timesteps(9, 1.0f);
    CHECK((ddim->timesteps() == std::vector<int64_t>{999, 888, 777, 666, 555, 443, 332, 221, 110, -1}));
    for (size_t n : {9, 11, 12, 18, 21, 22, 30, 31, 34}) {
        ddim->set_timesteps(n, 1.0f);
        CHECK_MSG(ddim->timesteps().size() == n + 1 && ddim->timesteps().back() == -1, "trailing N=" + std::to_string(n));
    }
    ddim->set_timesteps(10, 1.0f);
    CHECK((ddim->timesteps() == std::vector<int64_t>{999, 899, 799, 699, 599, 499, 399, 299, 199, 99}));

    // LINSPACE rounds half away from zero (std::round), e.g. 999*3/8 = 374.625 -> 375, 999/2 = 499.5 -> 500.
    auto lin = scheduler_from(R"({"_class_name":"DDIMScheduler","clip_sample":false,"timestep_spacing":"linspace"})");
    lin->set_timesteps(3, 1.0f);
    CHECK((lin->timesteps() == std::vector<int64_t>{999, 500, 0}));
    lin->set_timesteps(1, 1.0f);
    CHECK((lin->timesteps() == std::vector<int64_t>{0}));

    // LEADING with steps_offset, as SDXL ships it: 981, 961, ..., 1.
    auto euler = scheduler_from(kSdxlEuler);
    euler->set_timesteps(50, 1.0f);
    const auto ts = euler->timesteps();
    CHECK(ts.size() == 50 && ts.front() == 981 && ts[1] == 961 && ts.back() == 1);
    // init_noise_sigma = sqrt(sigma(981)^2 + 1) with endpoint=false betas (oracle value).
    CHECK(bits_equal(euler->init_noise_sigma(), 0x1.a3ba6p+3f));

    // SDXL sigma_max with endpoint=false betas is 14.5655, not diffusers' 14.6147.
    auto euler_lin =
        scheduler_from(R"({"_class_name":"EulerDiscreteScheduler","beta_start":0.00085,"beta_end":0.012,"timestep_spacing":"linspace"})");
    euler_lin->set_timesteps(50, 1.0f);
    CHECK(bits_equal(euler_lin->init_noise_sigma(), 0x1.d218ap+3f));
    CHECK(std::fabs(euler_lin->init_noise_sigma() - 14.5655f) < 1e-4f);

    // PNDM (PLMS): N+1 model calls, the second timestep repeated.
    auto pndm = scheduler_from(
        R"({"_class_name":"PNDMScheduler","beta_start":0.00085,"beta_end":0.012,"beta_schedule":"scaled_linear","skip_prk_steps":true,"steps_offset":1})");
    pndm->set_timesteps(50, 1.0f);
    const auto p = pndm->timesteps();
    CHECK(p.size() == 51 && p[0] == 981 && p[1] == 961 && p[2] == 961 && p[3] == 941 && p[49] == 21 && p[50] == 1);
    pndm->set_timesteps(1, 1.0f);
    CHECK((pndm->timesteps() == std::vector<int64_t>{1}));
    pndm->set_timesteps(10, 0.5f);  // strength slices the N+1 list from t_start = 5
    CHECK((pndm->timesteps() == std::vector<int64_t>{501, 401, 301, 201, 101, 1}));

    // LCM samples the original 50-step grid; strength shrinks that grid instead of slicing.
    auto lcm = scheduler_from(R"({"_class_name":"LCMScheduler"})");
    lcm->set_timesteps(4, 1.0f);
    CHECK((lcm->timesteps() == std::vector<int64_t>{999, 759, 499, 259}));
    lcm->set_timesteps(4, 0.8f);
    CHECK((lcm->timesteps() == std::vector<int64_t>{799, 599, 399, 199}));

    // Strength slicing: init = (size_t)(N * s) in float, t_start = N - init.
    auto d = scheduler_from(R"({"_class_name":"DDIMScheduler","clip_sample":false,"steps_offset":1})");
    d->set_timesteps(10, 0.5f);
    CHECK((d->timesteps() == std::vector<int64_t>{401, 301, 201, 101, 1}));
    d->set_timesteps(10, 0.99f);  // 9.9 -> 9 steps
    CHECK(d->timesteps().size() == 9 && d->timesteps().front() == 801);

    // Euler keeps the un-sliced schedule for add_noise and starts its sigma index at t_start.
    euler->set_timesteps(10, 0.3f);
    CHECK((euler->timesteps() == std::vector<int64_t>{201, 101, 1}));
    std::vector<float> x = {1.0f}, noise = {1.0f};
    euler->add_noise(x.data(), noise.data(), 1, 901);  // a timestep outside the slice still resolves
    CHECK(x[0] > 1.0f);
    EXPECT_THROW(std::invalid_argument, euler->add_noise(x.data(), noise.data(), 1, 900), "900");

    // FlowMatch slices in float: t_start = (size_t)(N - N*s); SD3 N=5, s=0.6 keeps 3 steps.
    auto sd3 = scheduler_from(R"({"_class_name":"FlowMatchEulerDiscreteScheduler","shift":3.0})");
    sd3->set_timesteps(5, 0.6f);
    CHECK(sd3->float_timesteps().size() == 3);
    sd3->set_timesteps(28, 1.0f);
    const auto ft = sd3->float_timesteps();
    CHECK(ft.size() == 28 && ft.front() == 1000.0f && ft.back() > 0.0f);
}

// ---------------------------------------------------------------- hand-computed steps

void test_hand_computed_steps() {
    // DDIM, T=2, betas {0.36, 0}: alpha_cumprod = {0.64, 0.64}; N=1 with steps_offset 1 runs t=1, t_prev=-1.
    // x=1, eps=0.5: x0 = (1 - 0.6*0.5)/0.8 = 0.875. With set_alpha_to_one: x_prev = x0.
    // Without it alpha_prev = alpha_cumprod[0] = 0.64: x_prev = 0.8*0.875 + 0.6*0.5 = 1.0.
    RandomGenerator rng(0);
    const float x = 1.0f, eps = 0.5f;
    for (bool to_one : {true, false}) {
        auto ddim = scheduler_from(std::string(R"({"_class_name":"DDIMScheduler","clip_sample":false,"num_train_timesteps":2,)") +
                                   R"("trained_betas":[0.36,0.0],"steps_offset":1,"set_alpha_to_one":)" + (to_one ? "true}" : "false}"));
        ddim->set_timesteps(1, 1.0f);
        CHECK((ddim->timesteps() == std::vector<int64_t>{1}));
        const StepResult r = ddim->step(&eps, &x, 1, 0, rng);
        CHECK(!r.has_denoised && r.latent.size() == 1);
        CHECK(std::fabs(r.latent[0] - (to_one ? 0.875f : 1.0f)) < 1e-6f);
    }

    // Euler, T=2, betas {0.5, 0.6}: alpha_cumprod = {0.5, 0.2}, sigma(1) = sqrt(0.8/0.2) = 2.
    // Leading spacing: init_noise_sigma = sqrt(2^2 + 1); scale_model_input divides by the same.
    // epsilon step at x=3, eps=0.5: x0 = 3 - 0.5*2 = 2; dt = 0 - 2; x_prev = (3-2)/2*(-2) + 3 = 2.
    auto euler =
        scheduler_from(R"({"_class_name":"EulerDiscreteScheduler","num_train_timesteps":2,"trained_betas":[0.5,0.6],"steps_offset":1})");
    euler->set_timesteps(1, 1.0f);
    CHECK((euler->timesteps() == std::vector<int64_t>{1}));
    CHECK(std::fabs(euler->init_noise_sigma() - std::sqrt(5.0f)) < 1e-5f);
    float sample = 3.0f;
    euler->scale_model_input(&sample, 1, 0);
    CHECK(std::fabs(sample - 3.0f / std::sqrt(5.0f)) < 1e-5f);
    const float x_e = 3.0f;
    const StepResult r = euler->step(&eps, &x_e, 1, 0, rng);
    CHECK(r.has_denoised && std::fabs(r.denoised[0] - 2.0f) < 1e-5f && std::fabs(r.latent[0] - 2.0f) < 1e-5f);

    // FlowMatch step is x + (sigma_next - sigma) * v; the last step goes to sigma 0: x - sigma_last * v.
    auto flow = scheduler_from(R"({"_class_name":"FlowMatchEulerDiscreteScheduler"})");
    flow->set_timesteps(1, 1.0f);
    CHECK((flow->float_timesteps() == std::vector<float>{1000.0f}));
    const float v = 0.25f, xf = 1.0f;
    CHECK(flow->step(&v, &xf, 1, 0, rng).latent[0] == 0.75f);
}
// ---------------------------------------------------------------- oracle golden runs

float x_init(int i) { return 0.25f * static_cast<float>(i) - 1.0f; }
float eps_at(int i, int k) { return 0.1f * static_cast<float>(i + 1) - 0.05f * static_cast<float>(k) - 0.3f; }
float image_at(int i) { return 0.5f - 0.125f * static_cast<float>(i); }

struct UNetGolden {
    const char* config;
    size_t steps;
    float strength;
    unsigned seed;
    std::vector<int64_t> timesteps;
    float init_noise_sigma;
    std::vector<float> add_noise_first, scaled_first, final_latent, final_denoised;
};

// Each case: set_timesteps; add_noise(image, noise, ts[0]); then for every step scale_model_input (first
// one recorded) and step() with eps_at(., k), feeding the latent back. RNG seeded with `seed`.
const std::vector<UNetGolden> kUNetGoldens = {
    // SD1.5 PNDM
    {
        R"({"_class_name":"PNDMScheduler","beta_start":0.00085,"beta_end":0.012,"beta_schedule":"scaled_linear","skip_prk_steps":true,"steps_offset":1,"set_alpha_to_one":false})",
        5,
        0x1p+0f,
        0,
        {801, 601, 601, 401, 201, 1},
        0x1p+0f,
        /* add_noise_first */
        {0x1.c1d40cp-2f, 0x1.44cee4p-2f, 0x1.8f9384p-3f, 0x1.2b1268p-4f, -0x1.92045ep-5f, -0x1.5e8b62p-3f, -0x1.2c4ad8p-2f, -0x1.a95p-2f},
        /* scaled_first */ {-0x1p+0f, -0x1.8p-1f, -0x1p-1f, -0x1p-2f, 0x0p+0f, 0x1p-2f, 0x1p-1f, 0x1.8p-1f},
        /* final_latent */
        {-0x1.de45bep+1f, -0x1.7875bcp+1f, -0x1.12a5b8p+1f, -0x1.59ab6ap+0f, -0x1.1c16cap-1f, 0x1.eca4f4p-3f, 0x1.0934a4p+0f,
         0x1.d4d4a6p+0f},
        /* final_denoised */ {},
    },
    // SDXL Euler
    {
        R"({"_class_name":"EulerDiscreteScheduler","beta_start":0.00085,"beta_end":0.012,"beta_schedule":"scaled_linear","steps_offset":1,"timestep_spacing":"leading"})",
        4,
        0x1p+0f,
        0,
        {751, 501, 251, 1},
        0x1.0eb35cp+2f,
        /* add_noise_first */
        {0x1.f03c9cp+0f, 0x1.6706b6p+0f, 0x1.bba1acp-1f, 0x1.526bc4p-2f, -0x1.a4d796p-3f, -0x1.7ba1acp-1f, -0x1.4706bap+0f, -0x1.d03cap+0f},
        /* scaled_first */
        {-0x1.e43208p-3f, -0x1.6b2586p-3f, -0x1.e43208p-4f, -0x1.e43208p-5f, 0x0p+0f, 0x1.e43208p-5f, 0x1.e43208p-4f, 0x1.6b2586p-3f},
        /* final_latent */
        {-0x1.eb17e2p-5f, -0x1.c47518p-3f, -0x1.87121ap-2f, -0x1.15f4d6p-1f, -0x1.68609cp-1f, -0x1.bacc66p-1f, -0x1.069c18p+0f,
         -0x1.2fd1fcp+0f},
        /* final_denoised */
        {-0x1.eb17e2p-5f, -0x1.c47518p-3f, -0x1.87121ap-2f, -0x1.15f4d6p-1f, -0x1.68609cp-1f, -0x1.bacc66p-1f, -0x1.069c18p+0f,
         -0x1.2fd1fcp+0f},
    },
    // SDXL Euler img2img
    {
        R"({"_class_name":"EulerDiscreteScheduler","beta_start":0.00085,"beta_end":0.012,"beta_schedule":"scaled_linear","steps_offset":1,"timestep_spacing":"leading"})",
        10,
        0x1.666666p-2f,
        0,
        {201, 101, 1},
        0x1.0db68ep+3f,
        /* add_noise_first */
        {0x1.66d7b8p-1f, 0x1.097584p-1f, 0x1.5826ap-2f, 0x1.3ac468p-3f, -0x1.d62358p-6f, -0x1.b04d3ep-3f, -0x1.92eb08p-2f, -0x1.26d7bap-1f},
        /* scaled_first */
        {-0x1.bc1132p-1f, -0x1.4d0ce6p-1f, -0x1.bc1132p-2f, -0x1.bc1132p-3f, 0x0p+0f, 0x1.bc1132p-3f, 0x1.bc1132p-2f, 0x1.4d0ce6p-1f},
        /* final_latent */
        {-0x1.bb505ep-1f, -0x1.58b292p-1f, -0x1.ec298ep-2f, -0x1.26edf6p-2f, -0x1.86c984p-4f, 0x1.8e24d4p-4f, 0x1.28c4ccp-2f,
         0x1.ee006p-2f},
        /* final_denoised */
        {-0x1.bb505ep-1f, -0x1.58b292p-1f, -0x1.ec298ep-2f, -0x1.26edf6p-2f, -0x1.86c984p-4f, 0x1.8e24d4p-4f, 0x1.28c4ccp-2f,
         0x1.ee006p-2f},
    },
    // EulerAncestral trailing
    {
        R"({"_class_name":"EulerAncestralDiscreteScheduler","beta_start":0.00085,"beta_end":0.012,"beta_schedule":"scaled_linear","steps_offset":1,"timestep_spacing":"trailing"})",
        3,
        0x1p+0f,
        42,
        {999, 666, 332},
        0x1.d218ap+3f,
        /* add_noise_first */
        {0x1.66446ep+2f, 0x1.010c4cp+2f, 0x1.37a86p+1f, 0x1.b4e078p-1f, -0x1.74e086p-1f, -0x1.27a86p+1f, -0x1.f218ap+1f, -0x1.5e4472p+2f},
        /* scaled_first */
        {-0x1.188d4ap-4f, -0x1.a4d3fp-5f, -0x1.188d4ap-5f, -0x1.188d4ap-6f, 0x0p+0f, 0x1.188d4ap-6f, 0x1.188d4ap-5f, 0x1.a4d3fp-5f},
        /* final_latent */
        {0x1.8a7188p+2f, -0x1.b5b8dp-1f, 0x1.de0ccp+0f, 0x1.075b88p+0f, 0x1.5146acp-2f, 0x1.900594p-4f, -0x1.7eab2ap+2f, -0x1.40b09p+3f},
        /* final_denoised */
        {0x1.8a7188p+2f, -0x1.b5b8dp-1f, 0x1.de0ccp+0f, 0x1.075b88p+0f, 0x1.5146acp-2f, 0x1.900594p-4f, -0x1.7eab2ap+2f, -0x1.40b09p+3f},
    },
    // DDIM img2img
    {
        R"({"_class_name":"DDIMScheduler","beta_start":0.00085,"beta_end":0.012,"beta_schedule":"scaled_linear","clip_sample":false,"set_alpha_to_one":false,"steps_offset":1})",
        8,
        0x1.8p-1f,
        0,
        {626, 501, 376, 251, 126, 1},
        0x1p+0f,
        /* add_noise_first */
        {0x1.054518p-1f, 0x1.7c03dcp-2f, 0x1.dafb18p-3f, 0x1.7bdce2p-4f, -0x1.7c78cep-5f, -0x1.7c2ad8p-3f, -0x1.4c9bbep-2f,
         -0x1.db2212p-2f},
        /* scaled_first */ {-0x1p+0f, -0x1.8p-1f, -0x1p-1f, -0x1p-2f, 0x0p+0f, 0x1p-2f, 0x1p-1f, 0x1.8p-1f},
        /* final_latent */
        {-0x1.026586p+1f, -0x1.977ef8p+0f, -0x1.2a32eap+0f, -0x1.79cdb8p-1f, -0x1.3e6b34p-2f, 0x1.db142p-4f, 0x1.15faa8p-1f, 0x1.f092cp-1f},
        /* final_denoised */ {},
    },
    // LCM
    {
        R"({"_class_name":"LCMScheduler","beta_start":0.00085,"beta_end":0.012,"beta_schedule":"scaled_linear","original_inference_steps":50})",
        4,
        0x1p+0f,
        42,
        {999, 759, 499, 259},
        0x1p+0f,
        /* add_noise_first */
        {0x1.8883f8p-2f, 0x1.199ddp-2f, 0x1.556f5cp-3f, 0x1.de8c2cp-5f, -0x1.98a504p-5f, -0x1.43f58ep-3f, -0x1.10e0eep-2f, -0x1.7fc716p-2f},
        /* scaled_first */ {-0x1p+0f, -0x1.8p-1f, -0x1p-1f, -0x1p-2f, 0x0p+0f, 0x1p-2f, 0x1p-1f, 0x1.8p-1f},
        /* final_latent */
        {-0x1.207eeep+2f, -0x1.914bd8p+3f, -0x1.8fc272p+1f, -0x1.f8fadap+0f, 0x1.26a9aep+0f, 0x1.4a8892p+2f, -0x1.a06c14p-3f,
         -0x1.0da80ap+1f},
        /* final_denoised */
        {-0x1.207eeep+2f, -0x1.914bd8p+3f, -0x1.8fc272p+1f, -0x1.f8fadap+0f, 0x1.26a9aep+0f, 0x1.4a8892p+2f, -0x1.a06c14p-3f,
         -0x1.0da80ap+1f},
    },
    // Euler v_prediction log_linear
    {
        R"({"_class_name":"EulerDiscreteScheduler","prediction_type":"v_prediction","timestep_spacing":"linspace","interpolation_type":"log_linear","final_sigmas_type":"sigma_min"})",
        3,
        0x1p+0f,
        0,
        {999, 500, 0},
        0x1.2561dap+5f,
        /* add_noise_first */
        {0x1.aabc2ep+3f, 0x1.3161d6p+3f, 0x1.700f06p+2f, 0x1.f56952p+0f, -0x1.d56964p+0f, -0x1.680f06p+2f, -0x1.2d61dap+3f,
         -0x1.a6bc34p+3f},
        /* scaled_first */
        {-0x1.be988cp-6f, -0x1.4ef268p-6f, -0x1.be988cp-7f, -0x1.be988cp-8f, 0x0p+0f, 0x1.be988cp-8f, 0x1.be988cp-7f, 0x1.4ef268p-6f},
        /* final_latent */
        {0x1.1ca712p-2f, 0x1.4faf46p-3f, 0x1.98419ep-5f, -0x1.071cf2p-4f, -0x1.6d2d56p-3f, -0x1.2b661cp-2f, -0x1.a0358ap-2f,
         -0x1.0a827ep-1f},
        /* final_denoised */
        {0x1.1f5174p-2f, 0x1.534e68p-3f, 0x1.9fe79ep-5f, -0x1.06b536p-4f, -0x1.6eaf1ap-3f, -0x1.2d01dp-2f, -0x1.a2ac0ep-2f,
         -0x1.0c2b28p-1f},
    },
    // EulerAncestral leading v_prediction
    {
        R"({"_class_name":"EulerAncestralDiscreteScheduler","prediction_type":"v_prediction","steps_offset":1})",
        4,
        0x1p+0f,
        69,
        {751, 501, 251, 1},
        0x1.17d7b2p+4f,
        /* add_noise_first */
        {0x1.a7238p+2f, 0x1.2f627ep+2f, 0x1.6f4304p+1f, 0x1.ff03f8p-1f, -0x1.bf040ap-1f, -0x1.5f4304p+1f, -0x1.276282p+2f, -0x1.9f2384p+2f},
        /* scaled_first */
        {-0x1.d460acp-5f, -0x1.5f4882p-5f, -0x1.d460acp-6f, -0x1.d460acp-7f, 0x0p+0f, 0x1.d460acp-7f, 0x1.d460acp-6f, 0x1.5f4882p-5f},
        /* final_latent */
        {-0x1.a26898p-2f, -0x1.b577c8p-4f, -0x1.a87d8p-3f, -0x1.591032p-3f, -0x1.09214ep-2f, -0x1.733d6cp-1f, 0x1.cb718ep-3f,
         0x1.1ab992p-2f},
        /* final_denoised */
        {-0x1.a26898p-2f, -0x1.b577c8p-4f, -0x1.a87d8p-3f, -0x1.591032p-3f, -0x1.09214ep-2f, -0x1.733d6cp-1f, 0x1.cb718ep-3f,
         0x1.1ab992p-2f},
    },
    // Euler trailing N=9 (ends at timestep -1)
    {
        R"({"_class_name":"EulerDiscreteScheduler","beta_start":0.00085,"beta_end":0.012,"timestep_spacing":"trailing"})",
        9,
        0x1p+0f,
        0,
        {999, 888, 777, 666, 555, 443, 332, 221, 110, -1},
        0x1.d218ap+3f,
        /* add_noise_first */
        {0x1.66446ep+2f, 0x1.010c4cp+2f, 0x1.37a86p+1f, 0x1.b4e078p-1f, -0x1.74e086p-1f, -0x1.27a86p+1f, -0x1.f218ap+1f, -0x1.5e4472p+2f},
        /* scaled_first */
        {-0x1.188d4ap-4f, -0x1.a4d3fp-5f, -0x1.188d4ap-5f, -0x1.188d4ap-6f, 0x0p+0f, 0x1.188d4ap-6f, 0x1.188d4ap-5f, 0x1.a4d3fp-5f},
        /* final_latent */
        {0x1.d58f64p+1f, 0x1.3b1f04p+1f, 0x1.415d98p+0f, 0x1.8f9fp-5f, -0x1.286378p+0f, -0x1.2ea214p+1f, -0x1.c9123p+1f, -0x1.31c134p+2f},
        /* final_denoised */
        {0x1.d58f64p+1f, 0x1.3b1f04p+1f, 0x1.415d98p+0f, 0x1.8f9fp-5f, -0x1.286378p+0f, -0x1.2ea214p+1f, -0x1.c9123p+1f, -0x1.31c134p+2f},
    },
    // DDIM sample prediction, zero-SNR
    {
        R"({"_class_name":"DDIMScheduler","clip_sample":false,"prediction_type":"sample","rescale_betas_zero_snr":true,"timestep_spacing":"linspace"})",
        4,
        0x1p+0f,
        0,
        {999, 666, 333, 0},
        0x1p+0f,
        /* add_noise_first */
        {0x1.666664p-2f, 0x1.fffff8p-3f, 0x1.333334p-3f, 0x1.99999p-5f, -0x1.9999ap-5f, -0x1.333334p-3f, -0x1p-2f, -0x1.666668p-2f},
        /* scaled_first */ {-0x1p+0f, -0x1.8p-1f, -0x1p-1f, -0x1p-2f, 0x0p+0f, 0x1p-2f, 0x1p-1f, 0x1.8p-1f},
        /* final_latent */
        {-0x1.666668p-2f, -0x1p-2f, -0x1.333334p-3f, -0x1.9999ap-5f, 0x1.99999p-5f, 0x1.333334p-3f, 0x1.fffff8p-3f, 0x1.666664p-2f},
        /* final_denoised */ {},
    },
    // PNDM v_prediction trailing
    {
        R"({"_class_name":"PNDMScheduler","skip_prk_steps":true,"prediction_type":"v_prediction","timestep_spacing":"trailing","set_alpha_to_one":true})",
        6,
        0x1.ccccccp-1f,
        0,
        {832, 832, 666, 499, 332, 166},
        0x1p+0f,
        /* add_noise_first */
        {0x1.758f46p-2f, 0x1.0b601ep-2f, 0x1.4261f4p-3f, 0x1.b80e8ap-5f, -0x1.996aacp-5f, -0x1.3ab8fap-3f, -0x1.078ba4p-2f,
         -0x1.71bacep-2f},
        /* scaled_first */ {-0x1p+0f, -0x1.8p-1f, -0x1p-1f, -0x1p-2f, 0x0p+0f, 0x1p-2f, 0x1p-1f, 0x1.8p-1f},
        /* final_latent */
        {-0x1.97afcp-3f, -0x1.211c68p-3f, -0x1.55121p-4f, -0x1.9fad18p-6f, 0x1.0a76fcp-5f, 0x1.726238p-4f, 0x1.2fc49p-3f, 0x1.a657dcp-3f},
        /* final_denoised */ {},
    },
};

struct FlowGolden {
    const char* config;
    size_t image_seq_len;  // 0: SD3-style set_timesteps(N, s)
    size_t steps;
    float strength;
    std::vector<float> timesteps;
    std::vector<float> scale_noise_first, final_latent;
};

const std::vector<FlowGolden> kFlowGoldens = {
    // SD3
    {
        R"({"_class_name":"FlowMatchEulerDiscreteScheduler","shift":3.0})",
        0,
        4,
        0x1p+0f,
        {0x1.f4p+9f, 0x1.acd89ep+9f, 0x1.2d1346p+9f, 0x1.1db6dcp+3f},
        /* scale_noise_first */
        {0x1.666664p-2f, 0x1.fffff8p-3f, 0x1.333334p-3f, 0x1.99999p-5f, -0x1.9999ap-5f, -0x1.333334p-3f, -0x1p-2f, -0x1.666668p-2f},
        /* final_latent */
        {-0x1.73ffdcp-1f, -0x1.27330ep-1f, -0x1.b4cc86p-2f, -0x1.1b32eap-2f, -0x1.0332a2p-3f, 0x1.80049p-6f, 0x1.6333c6p-3f,
         0x1.4b3378p-2f},
    },
    // SD3 img2img
    {
        R"({"_class_name":"FlowMatchEulerDiscreteScheduler","shift":3.0})",
        0,
        5,
        0x1.333334p-1f,
        {0x1.778f8p+9f, 0x1.f6fc2cp+8f, 0x1.1db6dcp+3f},
        /* scale_noise_first */
        {0x1.8ca0b6p-2f, 0x1.1fdb4p-2f, 0x1.662bap-3f, 0x1.19416cp-4f, -0x1.33a8c6p-5f, -0x1.267518p-3f, -0x1p-2f, -0x1.6cc574p-2f},
        /* final_latent */
        {-0x1.a5fafp-1f, -0x1.4c7008p-1f, -0x1.e5ca4p-2f, -0x1.32b46ep-2f, -0x1.fe7a7ap-4f, 0x1.9bb982p-5f, 0x1.cd1ap-3f, 0x1.99a2dp-2f},
    },
    // FLUX.1-dev
    {
        R"({"_class_name":"FlowMatchEulerDiscreteScheduler","shift":3.0,"use_dynamic_shifting":true,"base_shift":0.5,"max_shift":1.15,"base_image_seq_len":256,"max_image_seq_len":4096})",
        4096,
        4,
        0x1p+0f,
        {0x1.f4p+9f, 0x1.c443fp+9f, 0x1.7bc166p+9f, 0x1.006c0cp+9f},
        /* scale_noise_first */
        {0x1.666664p-2f, 0x1.fffff8p-3f, 0x1.333334p-3f, 0x1.99999p-5f, -0x1.9999ap-5f, -0x1.333334p-3f, -0x1p-2f, -0x1.666668p-2f},
        /* final_latent */
        {-0x1.61df28p-1f, -0x1.15125cp-1f, -0x1.908b2p-2f, -0x1.ede30cp-3f, -0x1.755facp-4f, 0x1.e20d6cp-5f, 0x1.abb696p-3f, 0x1.6f74ep-2f},
    },
    // FLUX.2 empirical mu
    {
        R"({"_class_name":"FlowMatchEulerDiscreteScheduler","shift":3.0,"use_dynamic_shifting":true,"time_shift_type":"exponential"})",
        1024,
        4,
        0x1.99999ap-1f,
        {0x1.f4p+9f, 0x1.df0aeep+9f, 0x1.b9fdaep+9f, 0x1.66bf9p+9f},
        /* scale_noise_first */
        {0x1.666664p-2f, 0x1.fffff8p-3f, 0x1.333334p-3f, 0x1.99999p-5f, -0x1.9999ap-5f, -0x1.333334p-3f, -0x1p-2f, -0x1.666668p-2f},
        /* final_latent */
        {-0x1.58134p-1f, -0x1.0b4672p-1f, -0x1.7cf348p-2f, -0x1.c6b35cp-3f, -0x1.270054p-4f, 0x1.3f660ep-4f, 0x1.d2e64p-3f, 0x1.830cb8p-2f},
    },
};

void test_oracle_goldens() {
    for (const auto& g : kUNetGoldens) {
        auto s = scheduler_from(g.config);
        s->set_timesteps(g.steps, g.strength);
        const std::string label = std::string(scheduler_type_name(s->type())) + " " + g.config;
        CHECK_MSG(s->timesteps() == g.timesteps, "timesteps of " + label);
        CHECK_MSG(bits_equal(s->init_noise_sigma(), g.init_noise_sigma), "init_noise_sigma of " + label);
        std::vector<float> x(8), image(8), noise(8);
        for (int i = 0; i < 8; ++i) {
            x[i] = x_init(i);
            image[i] = image_at(i);
            noise[i] = eps_at(7 - i, 3);
        }
        s->add_noise(image.data(), noise.data(), 8, g.timesteps[0]);
        CHECK_MSG(bits_equal(image, g.add_noise_first), "add_noise of " + label);
        RandomGenerator rng(g.seed);
        std::vector<float> denoised;
        for (size_t k = 0; k < g.timesteps.size(); ++k) {
            std::vector<float> scaled = x, eps(8);
            s->scale_model_input(scaled.data(), 8, k);
            if (k == 0) CHECK_MSG(bits_equal(scaled, g.scaled_first), "scale_model_input of " + label);
            for (int i = 0; i < 8; ++i) eps[i] = eps_at(i, static_cast<int>(k));
            StepResult r = s->step(eps.data(), x.data(), 8, k, rng);
            x = r.latent;
            if (r.has_denoised) denoised = r.denoised;
        }
        CHECK_MSG(bits_equal(x, g.final_latent), "final latent of " + label);
        CHECK_MSG(bits_equal(denoised, g.final_denoised), "final denoised of " + label);
    }
    for (const auto& g : kFlowGoldens) {
        auto s = scheduler_from(g.config);
        if (g.image_seq_len)
            s->set_timesteps(g.image_seq_len, g.steps, g.strength);
        else
            s->set_timesteps(g.steps, g.strength);
        const std::string label = std::string(g.config) + " seq " + std::to_string(g.image_seq_len);
        const std::vector<float> ts = s->float_timesteps();
        CHECK_MSG(bits_equal(ts, g.timesteps), "float timesteps of " + label);
        std::vector<float> x(8), image(8), noise(8);
        for (int i = 0; i < 8; ++i) {
            x[i] = x_init(i);
            image[i] = image_at(i);
            noise[i] = eps_at(7 - i, 3);
        }
        s->scale_noise(image.data(), noise.data(), 8, ts[0]);
        CHECK_MSG(bits_equal(image, g.scale_noise_first), "scale_noise of " + label);
        RandomGenerator rng(0);
        for (size_t k = 0; k < ts.size(); ++k) {
            std::vector<float> v(8);
            for (int i = 0; i < 8; ++i) v[i] = eps_at(i, static_cast<int>(k));
            x = s->step(v.data(), x.data(), 8, k, rng).latent;
        }
        CHECK_MSG(bits_equal(x, g.final_latent), "final latent of " + label);
    }
}

// Guidance and its rescale, on values worked out by hand.
void test_guidance() {
    // Two images of 4 values: [uncond x 2 ; cond x 2]. Image 0: u = 0, c = 1..4; image 1: u = c = 5 (constant).
    const std::vector<float> prediction = {0, 0, 0, 0, 5, 5, 5, 5, 1, 2, 3, 4, 5, 5, 5, 5};
    std::vector<float> out(8);
    apply_guidance(prediction.data(), 8, true, 2.0f, out.data());
    CHECK((out == std::vector<float>{2, 4, 6, 8, 5, 5, 5, 5}));  // u + 2 (c - u)
    const std::vector<float> guided = out;
    // phi = 1: back to the spread of c (std(c) / std(out) = 1/2); the constant image has no spread and stays.
    rescale_guidance(prediction.data() + 8, 8, 2, 1.0f, out.data());
    CHECK((out == std::vector<float>{1, 2, 3, 4, 5, 5, 5, 5}));
    // phi = 0.5: half of each, factor 0.75.
    out = guided;
    rescale_guidance(prediction.data() + 8, 8, 2, 0.5f, out.data());
    CHECK((out == std::vector<float>{1.5f, 3, 4.5f, 6, 5, 5, 5, 5}));
    // phi = 0 changes nothing; without guidance the first half is copied.
    out = guided;
    rescale_guidance(prediction.data() + 8, 8, 2, 0.0f, out.data());
    CHECK(out == guided);
    apply_guidance(prediction.data(), 8, false, 2.0f, out.data());
    CHECK((out == std::vector<float>{0, 0, 0, 0, 5, 5, 5, 5}));
    // Outside the mask (m = 0) the image is kept, inside (m = 1) the latent; the mask repeats every 2 values.
    std::vector<float> latent = {1, 1, 1, 1};
    const std::vector<float> image = {9, 9, 9, 9}, mask = {0, 1};
    blend_outside_mask(latent.data(), image.data(), mask.data(), 4, 2);
    CHECK((latent == std::vector<float>{9, 1, 9, 1}));
    // Qwen-Image's norm rescale, two tokens of 2 values: token 0 u = (0, 0), c = (3, 4) -> u + 2 (c - u) = (6, 8),
    // scaled by |c| / |out| = 5 / 10; token 1 u = c = (1, 1) stays.
    const std::vector<float> tokens = {0, 0, 1, 1, 3, 4, 1, 1};
    std::vector<float> rescaled(4);
    apply_guidance_norm_rescale(tokens.data(), 4, 2.0f, 2, rescaled.data());
    CHECK((rescaled == std::vector<float>{3, 4, 1, 1}));
}

}  // namespace

int main() {
    const std::vector<std::pair<const char*, void (*)()>> groups = {
        {"rng", test_rng},
        {"json", test_json},
        {"scheduler types and validation", test_scheduler_types_and_validation},
        {"timesteps", test_timesteps},
        {"hand-computed steps", test_hand_computed_steps},
        {"oracle goldens", test_oracle_goldens},
        {"guidance", test_guidance},
    };
    for (const auto& [name, fn] : groups) {
        const int failed_before = g_failed;
        try {
            fn();
        } catch (const std::exception& e) {
            ++g_failed;
            std::printf("FAIL: %s threw: %s\n", name, e.what());
        }
        std::printf("%-32s %s\n", name, g_failed == failed_before ? "ok" : "FAILED");
    }
    std::printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
