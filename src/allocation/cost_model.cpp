#include "mpq/allocation/cost_model.h"

#include <cmath>

#include "mpq/core/error.h"
#include "mpq/core/file.h"
#include "mpq/exec/executor.h"

namespace mpq::allocation {
namespace {

struct Unit {
  const char* suffix;
  double factor;
};

double parse_value(const std::string& text, const std::string& value,
                   std::initializer_list<Unit> units, const char* rule) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(value, &used);
  } catch (const std::exception&) {
    fail(ErrorCode::kInvalidArgument, "--budget {}: '{}' is not a number{}", text, value, rule);
  }
  std::string suffix = value.substr(used);
  for (const Unit& u : units)
    if (suffix == u.suffix) {
      MPQ_CHECK(v > 0 && std::isfinite(v), ErrorCode::kInvalidArgument,
                "--budget {}: must be positive", text);
      return v * u.factor;
    }
  fail(ErrorCode::kInvalidArgument, "--budget {}: unknown unit '{}'{}", text, suffix, rule);
}

}  // namespace

const char* cost_name(CostKind kind) {
  switch (kind) {
    case CostKind::kSize:
      return "size";
    case CostKind::kBops:
      return "bops";
    case CostKind::kLatency:
      return "latency";
    case CostKind::kEnergy:
      return "energy";
    case CostKind::kAvgWBits:
      return "avg-w-bits";
  }
  return "?";
}

Budget parse_budget(const std::string& text) {
  auto eq = text.find('=');
  MPQ_CHECK(eq != std::string::npos, ErrorCode::kInvalidArgument,
            "--budget {}: expected KIND=VALUE with KIND size, bops, latency, energy or "
            "avg-w-bits (e.g. size=60KB)",
            text);
  std::string kind = text.substr(0, eq), value = text.substr(eq + 1);
  Budget b;
  b.text = text;
  if (kind == "size") {
    b.kind = CostKind::kSize;
    b.limit = parse_value(text, value,
                          {{"", 1}, {"B", 1}, {"KB", 1024}, {"MB", 1024.0 * 1024}, {"kB", 1024}},
                          " (sizes: 60000, 60KB, 1.5MB; KB = 1024 bytes)");
  } else if (kind == "bops") {
    b.kind = CostKind::kBops;
    b.limit = parse_value(text, value, {{"", 1}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}},
                          " (BOPs per image: 2.5G, 800M)");
  } else if (kind == "latency") {
    b.kind = CostKind::kLatency;
    b.limit = parse_value(text, value, {{"ms", 1}, {"us", 1e-3}, {"s", 1e3}},
                          " (latency: 5ms, 300us)");
  } else if (kind == "energy") {
    b.kind = CostKind::kEnergy;
    b.limit = parse_value(text, value, {{"pJ", 1}, {"nJ", 1e3}, {"uJ", 1e6}, {"mJ", 1e9}},
                          " (energy per image: 40uJ, 2mJ)");
  } else if (kind == "avg-w-bits") {
    b.kind = CostKind::kAvgWBits;
    b.limit = parse_value(text, value, {{"", 1}}, " (average weight bits: 3, 2.5)");
  } else {
    fail(ErrorCode::kInvalidArgument,
         "--budget {}: unknown kind '{}'; kinds: size, bops, latency, energy, avg-w-bits", text,
         kind);
  }
  return b;
}

std::string format_cost(CostKind kind, double v) {
  switch (kind) {
    case CostKind::kSize:
      return v >= 1024 * 1024 ? fmt::format("{:.3f} MB", v / 1024 / 1024)
                              : fmt::format("{:.2f} KB", v / 1024);
    case CostKind::kBops:
      return fmt::format("{:.4g} GBOPs", v / 1e9);
    case CostKind::kLatency:
      return fmt::format("{:.4g} ms", v);
    case CostKind::kEnergy:
      return fmt::format("{:.4g} uJ", v / 1e6);
    case CostKind::kAvgWBits:
      return fmt::format("{:.4g} bits", v);
  }
  return "";
}

LatencyTable load_latency_table(const std::string& path) {
  LatencyTable t;
  t.source = path;
  try {
    auto j = nlohmann::json::parse(read_file(path, "latency table"));
    for (const auto& [layer, entries] : j.at("layers").items())
      for (const auto& [pair, ms] : entries.items()) t.ms[layer][pair] = ms.get<double>();
  } catch (const nlohmann::json::exception& e) {
    fail(ErrorCode::kBadFile, "{}: not a latency table ({{\"layers\": {{layer: {{\"w4a8\": ms}}}}}}): {}",
         path, e.what());
  }
  return t;
}

CostModel::CostModel(const ir::Graph& model, const LatencyTable* latency) : latency_(latency) {
  auto shapes = exec::infer_shapes(model, exec::input_shape(model));
  for (const ir::LayerInfo& l : exec::quantizable_layers(model)) {
    LayerCost c;
    c.name = l.name;
    c.params = l.params;
    c.macs = l.macs;
    const ir::Node& node = model.nodes[static_cast<size_t>(l.node)];
    bool trans_b = node.attr_int("transB", 0) != 0;
    c.channels = node.op == "Conv" || trans_b ? l.weight_shape[0] : l.weight_shape.back();
    auto it = shapes.find(node.inputs[0]);
    c.input_elements = 1;
    if (it != shapes.end())
      for (int64_t d : it->second) c.input_elements *= std::max<int64_t>(d, 1);
    total_params_ += c.params;
    layers_.push_back(c);
    if (latency_) {
      MPQ_CHECK(latency_->ms.count(l.name), ErrorCode::kBadFile,
                "{}: no latency entry for layer '{}'", latency_->source, l.name);
    }
  }
}

double CostModel::cost(CostKind kind, size_t layer, int w, int a) const {
  const LayerCost& c = layers_.at(layer);
  int wb = is_quantized(w) ? w : 32, ab = is_quantized(a) ? a : 32;
  switch (kind) {
    case CostKind::kSize:
      return is_quantized(w) ? (static_cast<double>(c.params) * w + 32.0 * c.channels) / 8.0
                             : 4.0 * c.params;
    case CostKind::kAvgWBits:
      return static_cast<double>(c.params) * wb;
    case CostKind::kBops:
      return static_cast<double>(c.macs) * wb * ab;
    case CostKind::kEnergy: {
      double mac = wb == 32 && ab == 32 ? 4.6 : 0.2 * wb * ab / 64.0 + 0.1;
      double bytes = (static_cast<double>(c.params) * wb + static_cast<double>(c.input_elements) * ab) / 8;
      return static_cast<double>(c.macs) * mac + 160.0 * bytes;
    }
    case CostKind::kLatency: {
      MPQ_CHECK(latency_, ErrorCode::kInvalidArgument,
                "a latency budget needs a measured table: --latency-table lut.json");
      std::string key = fmt::format("w{}a{}", w, a);
      auto it = latency_->ms.at(c.name).find(key);
      MPQ_CHECK(it != latency_->ms.at(c.name).end(), ErrorCode::kBadFile,
                "{}: layer '{}' has no entry \"{}\"", latency_->source, c.name, key);
      return it->second;
    }
  }
  return 0;
}

double CostModel::total(CostKind kind, const BitPlan& plan) const {
  double sum = 0;
  for (size_t l = 0; l < layers_.size(); ++l) {
    const LayerBits* b = plan.find(layers_[l].name);
    MPQ_CHECK(b, ErrorCode::kInvalidArgument, "plan has no entry for layer '{}'", layers_[l].name);
    sum += cost(kind, l, b->w_bits, b->a_bits);
  }
  return kind == CostKind::kAvgWBits ? sum / static_cast<double>(total_params_) : sum;
}

double CostModel::limit(const Budget& budget) const {
  return budget.kind == CostKind::kAvgWBits ? budget.limit * static_cast<double>(total_params_)
                                             : budget.limit;
}

nlohmann::json CostModel::predicted(const BitPlan& plan) const {
  nlohmann::json j{{"size_bytes", total(CostKind::kSize, plan)},
                   {"bops", total(CostKind::kBops, plan)},
                   {"energy_pj", total(CostKind::kEnergy, plan)},
                   {"avg_w_bits", total(CostKind::kAvgWBits, plan)}};
  if (latency_) j["latency_ms"] = total(CostKind::kLatency, plan);
  return j;
}

}  // namespace mpq::allocation
