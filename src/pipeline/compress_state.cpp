#include "mpq/pipeline/compress_state.h"

#include "mpq/core/error.h"

namespace mpq::pipeline {

CompressState parse_compress_state(const std::string& text, const std::string& source) {
  using nlohmann::json;
  json j;
  try {
    j = json::parse(text, nullptr, false);
  } catch (const json::exception&) {  // a number out of range throws even so
    j = json(json::value_t::discarded);
  }
  auto not_state = [&](const std::string& why) {
    fail(ErrorCode::kBadFile, "{} is not a compress state file; rerun without --resume ({})",
         source, why);
  };
  if (j.is_discarded()) not_state("not valid JSON");
  if (!j.is_object()) not_state("not a JSON object");
  if (!j.contains("config") || !j["config"].is_object()) not_state("no \"config\" object");
  if (!j.contains("stages") || !j["stages"].is_object()) not_state("no \"stages\" object");
  for (const auto& [name, stage] : j["stages"].items())
    if (!stage.is_object()) not_state("stage '" + name + "' is not an object");
  return {j["config"], j["stages"]};
}

std::string config_difference(const nlohmann::json& saved, const nlohmann::json& current) {
  for (const auto& [key, value] : current.items()) {
    auto it = saved.find(key);
    if (it == saved.end()) return fmt::format("{} = (not set), this run has {}", key, value.dump());
    if (*it == value) continue;
    if (it->is_object() && value.is_object()) {  // name the option inside, e.g. "quant.iters"
      std::string inner = config_difference(*it, value);
      if (!inner.empty()) return key + "." + inner;
      return fmt::format("{} = (more options), this run has {}", key, value.dump());
    }
    return fmt::format("{} = {}, this run has {}", key, it->dump(), value.dump());
  }
  return "";
}

}  // namespace mpq::pipeline
