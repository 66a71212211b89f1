// compress.json, the record `mpq compress` keeps in its output folder so that --resume can
// reuse finished stages:
//
//   {"config": {option: value, ...},
//    "stages": {"sensitivity": {"seconds": 1.2, "reused": false}, ...}}
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace mpq::pipeline {

struct CompressState {
  nlohmann::json config = nlohmann::json::object();  // the options of the run that wrote it
  nlohmann::json stages = nlohmann::json::object();  // finished stage -> {"seconds", "reused"}
};

// Parses a compress.json; a file that is not one is an mpq::Error naming `source`.
CompressState parse_compress_state(const std::string& text, const std::string& source);

// The first option of `current` that `saved` lacks or has with another value, as
// "key = saved value, this run has current value" (a nested option as "outer.inner = ...");
// empty when none.
std::string config_difference(const nlohmann::json& saved, const nlohmann::json& current);

}  // namespace mpq::pipeline
