// compress.json, read back by `mpq compress --resume`: what is not a state file is one error
// naming it; a state file's options are compared key by key.
#include "mpq/pipeline/compress_state.h"

#include <functional>

#include "mpq/pipeline/compress.h"
#include "test_util.h"

namespace mpq {
namespace {

using nlohmann::json;
using test::error_of;

TEST(CompressState, ReadsConfigAndStages) {
  auto state = pipeline::parse_compress_state(
      R"({"config": {"budgets": "avg-w-bits=4"}, "stages": {"sensitivity": {"seconds": 1.5}}})",
      "out/compress.json");
  EXPECT_EQ(state.config["budgets"], "avg-w-bits=4");
  EXPECT_EQ(state.stages["sensitivity"]["seconds"], 1.5);
  EXPECT_EQ(pipeline::config_difference(state.config, json{{"budgets", "avg-w-bits=4"}}), "");
  EXPECT_EQ(pipeline::config_difference(state.config, json{{"budgets", "size=30KB"}}),
            "budgets = \"avg-w-bits=4\", this run has \"size=30KB\"");
  EXPECT_EQ(pipeline::config_difference(state.config, json{{"method", "ilp"}}),
            "method = (not set), this run has \"ilp\"");
}

TEST(CompressState, NamesTheNestedOptionThatDiffers) {
  json saved{{"quant", {{"rounding", "attention"}, {"iters", 0}}}};
  EXPECT_EQ(pipeline::config_difference(saved, saved), "");
  EXPECT_EQ(pipeline::config_difference(
                saved, json{{"quant", {{"rounding", "attention"}, {"iters", 200}}}}),
            "quant.iters = 0, this run has 200");
}

// Every option that changes a result changes the fingerprint --resume compares; the ones that
// only change where output goes or how it is shown do not.
TEST(CompressFingerprint, SeesEveryResultChangingOption) {
  pipeline::CompressOptions base;
  base.model_name = "/m.onnx";
  base.data.spec = "cifar10:t.bin";
  base.calib.spec = "cifar10:c.bin";
  json reference = pipeline::fingerprint(base);
  std::vector<std::pair<std::string, std::function<void(pipeline::CompressOptions&)>>> changes = {
      {"model", [](auto& o) { o.model_name = "/n.onnx"; }},
      {"data", [](auto& o) { o.data.crop = 24; }},
      {"calib", [](auto& o) { o.calib.mean = {0.5}; }},
      {"calib_count", [](auto& o) { o.calib_count = 512; }},
      {"budgets", [](auto& o) { o.budgets = {"size=1MB"}; }},
      {"method", [](auto& o) { o.method = "proportional"; }},
      {"a_bits", [](auto& o) { o.a_bits = 4; }},
      {"a_candidates",
       [](auto& o) {
         o.a_candidates = {4, 8};
       }},
      {"first_last_bits", [](auto& o) { o.first_last_bits = 0; }},
      {"baselines", [](auto& o) { o.baselines = "none"; }},
      {"sensitivity.metric", [](auto& o) { o.sensitivity.metric = "hessian_trace"; }},
      {"sensitivity.count", [](auto& o) { o.sensitivity.count = 64; }},
      {"sensitivity.seed", [](auto& o) { o.sensitivity.options.seed = 3; }},
      {"sensitivity.recon_iters", [](auto& o) { o.sensitivity.options.recon_iters = 7; }},
      {"quant.weight_grid",
       [](auto& o) {
         o.quant.weight_grid = o.quant.weight_grid == quant::WeightGrid::kFull
                                   ? quant::WeightGrid::kRestricted
                                   : quant::WeightGrid::kFull;
       }},
      {"quant.iters", [](auto& o) { o.quant.round.iters = 200; }},
      {"quant.qdrop", [](auto& o) { o.quant.round.qdrop = 0.25; }},
      {"quant.percentile", [](auto& o) { o.quant.calibration.observer_options.percentile = 99; }}};
  for (const auto& [what, change] : changes) {
    pipeline::CompressOptions o = base;
    change(o);
    std::string difference = pipeline::config_difference(reference, pipeline::fingerprint(o));
    EXPECT_EQ(difference.rfind(what, 0), 0u) << what << ": " << difference;
  }
  pipeline::CompressOptions ssps = base;
  ssps.method = "ssps";
  pipeline::CompressOptions theta = ssps;
  theta.ssps.options.theta = 0.8;
  EXPECT_EQ(pipeline::config_difference(pipeline::fingerprint(ssps), pipeline::fingerprint(theta)),
            "ssps.theta = 0.5, this run has 0.8");

  pipeline::CompressOptions presentation = base;
  presentation.out = "elsewhere";
  presentation.resume = true;
  presentation.stop_after = "allocation";
  presentation.progress = presentation.eval_progress = false;
  presentation.quant.calibration.progress = presentation.quant.round.progress = false;
  presentation.quant.plan_source = "plan.json";
  EXPECT_EQ(pipeline::fingerprint(presentation), reference);
}

TEST(CompressState, WhatIsNotAStateFileIsOneErrorNamingIt) {
  // Each of these reached json's operator[] or items() on the wrong type (a json exception
  // out of the CLI) or a number out of range, found by fuzzing compress.json.
  for (const char* text :
       {"[1, 2]", "{", "{\"config\": 3, \"stages\": {}}", "{\"config\": {}, \"stages\": []}",
        "{\"config\": {}, \"stages\": {\"a\": 1}}", "{\"config\": {}}",
        "{\"config\": {\"x\": 1e99999}, \"stages\": {}}"}) {
    std::string msg = error_of([&] { pipeline::parse_compress_state(text, "out/compress.json"); });
    EXPECT_EQ(
        msg.rfind("out/compress.json is not a compress state file; rerun without --resume", 0), 0u)
        << text << ": " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace mpq
