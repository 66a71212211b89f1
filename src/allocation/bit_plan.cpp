#include "mpq/allocation/bit_plan.h"

#include <set>

#include "mpq/core/error.h"
#include "mpq/core/file.h"

namespace mpq::allocation {
namespace {

using nlohmann::json;

int read_bits(const json& entry, const char* key, const std::string& where) {
  MPQ_CHECK(entry.contains(key), ErrorCode::kBadFile, "{}: missing \"{}\"", where, key);
  const json& v = entry.at(key);
  MPQ_CHECK(v.is_number_integer(), ErrorCode::kBadFile, "{}: \"{}\" = {}: must be an integer",
            where, key, v.dump());
  int64_t bits = v.get<int64_t>();
  MPQ_CHECK(bits >= 0 && bits <= 64 && valid_bits(static_cast<int>(bits)),
            ErrorCode::kBadFile, "{}: \"{}\" = {}: widths are 2..8, or 16/32 for float", where,
            key, bits);
  return static_cast<int>(bits);
}

}  // namespace

const LayerBits* BitPlan::find(const std::string& layer) const {
  for (const LayerBits& l : layers)
    if (l.name == layer) return &l;
  return nullptr;
}

bool valid_bits(int bits) { return (bits >= 2 && bits <= 8) || bits == 16 || bits == 32; }

BitPlan uniform_plan(const std::vector<ir::LayerInfo>& layers, int w_bits, int a_bits,
                     int first_last_bits) {
  MPQ_CHECK(valid_bits(w_bits), ErrorCode::kInvalidArgument,
            "--w-bits {}: widths are 2..8, or 16/32 for float", w_bits);
  MPQ_CHECK(valid_bits(a_bits), ErrorCode::kInvalidArgument,
            "--a-bits {}: widths are 2..8, or 16/32 for float", a_bits);
  MPQ_CHECK(first_last_bits == 0 || valid_bits(first_last_bits), ErrorCode::kInvalidArgument,
            "--first-last-bits {}: widths are 2..8, 16/32 for float, or 0 for no pinning",
            first_last_bits);
  BitPlan plan;
  for (size_t i = 0; i < layers.size(); ++i) {
    bool pinned = first_last_bits > 0 && (i == 0 || i + 1 == layers.size());
    int w = pinned ? std::max(w_bits, first_last_bits) : w_bits;
    int a = pinned ? std::max(a_bits, first_last_bits) : a_bits;
    plan.layers.push_back({layers[i].name, w, a});
  }
  plan.budget = {{"uniform", {{"w_bits", w_bits}, {"a_bits", a_bits}}},
                 {"first_last_bits", first_last_bits}};
  return plan;
}

BitPlan parse_bit_plan(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {  // a syntax error or a number out of range
    std::string what = e.what();
    fail(ErrorCode::kBadFile, "{}: not valid JSON: {}", source, what.substr(what.find(']') + 2));
  }
  MPQ_CHECK(j.is_object(), ErrorCode::kBadFile, "{}: a bit plan is a JSON object, got {}",
            source, j.type_name());
  MPQ_CHECK(j.contains("layers") && j["layers"].is_array(), ErrorCode::kBadFile,
            "{}: missing the \"layers\" array", source);
  BitPlan plan;
  if (j.contains("model") && j["model"].is_string()) plan.model = j["model"];
  if (j.contains("budget")) plan.budget = j["budget"];
  if (j.contains("predicted")) plan.predicted = j["predicted"];
  std::set<std::string> seen;
  for (size_t i = 0; i < j["layers"].size(); ++i) {
    const json& e = j["layers"][i];
    std::string where = fmt::format("{}: layers[{}]", source, i);
    MPQ_CHECK(e.is_object(), ErrorCode::kBadFile, "{}: must be an object", where);
    MPQ_CHECK(e.contains("name") && e["name"].is_string(), ErrorCode::kBadFile,
              "{}: missing \"name\"", where);
    LayerBits l;
    l.name = e["name"];
    where = fmt::format("{}: layer '{}'", source, l.name);
    l.w_bits = read_bits(e, "w_bits", where);
    l.a_bits = read_bits(e, "a_bits", where);
    MPQ_CHECK(seen.insert(l.name).second, ErrorCode::kBadFile, "{}: listed twice", where);
    plan.layers.push_back(l);
  }
  return plan;
}

BitPlan load_bit_plan(const std::string& path) {
  return parse_bit_plan(read_file(path, "bit plan"), path);
}

void check_plan(const BitPlan& plan, const std::vector<ir::LayerInfo>& layers,
                const std::string& source) {
  std::set<std::string> known;
  for (const ir::LayerInfo& l : layers) known.insert(l.name);
  for (const LayerBits& l : plan.layers) {
    if (known.count(l.name)) continue;
    std::string names;
    for (size_t i = 0; i < layers.size() && i < 4; ++i) names += "'" + layers[i].name + "', ";
    fail(ErrorCode::kBadFile,
         "{}: layer '{}' is not a quantized layer of the model (it has {}: {}...; see mpq "
         "inspect)",
         source, l.name, layers.size(), names);
  }
  for (const ir::LayerInfo& l : layers)
    MPQ_CHECK(plan.find(l.name), ErrorCode::kBadFile,
              "{}: no entry for layer '{}' ({}); every quantized layer needs w_bits and a_bits",
              source, l.name, l.op);
}

nlohmann::json to_json(const BitPlan& plan) {
  json layers = json::array();
  for (const LayerBits& l : plan.layers)
    layers.push_back({{"name", l.name}, {"w_bits", l.w_bits}, {"a_bits", l.a_bits}});
  return {{"model", plan.model},
          {"layers", layers},
          {"budget", plan.budget},
          {"predicted", plan.predicted}};
}

void save_bit_plan(const BitPlan& plan, const std::string& path) {
  write_file_atomic(path, to_json(plan).dump(2) + "\n");
}

int64_t weight_bits(const BitPlan& plan, const std::vector<ir::LayerInfo>& layers) {
  int64_t bits = 0;
  for (const ir::LayerInfo& l : layers) {
    const LayerBits* b = plan.find(l.name);
    int w = b && is_quantized(b->w_bits) ? b->w_bits : 32;
    bits += l.params * w;
  }
  return bits;
}

double average_w_bits(const BitPlan& plan, const std::vector<ir::LayerInfo>& layers) {
  int64_t params = 0;
  for (const ir::LayerInfo& l : layers) params += l.params;
  return params ? static_cast<double>(weight_bits(plan, layers)) / params : 0.0;
}

}  // namespace mpq::allocation
