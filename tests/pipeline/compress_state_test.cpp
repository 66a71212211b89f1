// compress.json, read back by `mpq compress --resume`: what is not a state file is one error
// naming it; a state file's options are compared key by key.
#include "mpq/pipeline/compress_state.h"

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
