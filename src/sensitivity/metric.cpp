#include "mpq/sensitivity/metric.h"

#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "mpq/core/error.h"
#include "mpq/core/file.h"
#include "mpq/exec/executor.h"
#include "mpq/ir/passes.h"
#include "mpq/quant/quantizer.h"

namespace mpq::sensitivity {

double Report::omega_at(size_t layer, int b) const {
  for (size_t k = 0; k < bits.size(); ++k)
    if (bits[k] == b) return omega.at(layer)[k];
  MPQ_CHECK(b > bits.back(), ErrorCode::kInvalidArgument,
            "sensitivity report ({}): width {} is not among its candidates", metric, b);
  return 0.0;
}

double Report::a_omega_at(size_t layer, int b) const {
  for (size_t k = 0; k < a_bits.size(); ++k)
    if (a_bits[k] == b) return a_omega.at(layer)[k];
  MPQ_CHECK(!a_bits.empty() && b > a_bits.back(), ErrorCode::kInvalidArgument,
            "sensitivity report ({}): activation width {} was not measured (measured: {}); "
            "rerun the metric with that width among --a-candidates",
            metric, b, fmt::join(a_bits, ","));
  return 0.0;
}

Report compute(const std::string& metric, const Context& ctx) {
  auto m = Registry<Metric>::create(metric, "sensitivity metric");
  MPQ_CHECK(!m->needs_data() || ctx.data != nullptr, ErrorCode::kInvalidArgument,
            "metric '{}' needs data: give --data SPEC (calibration images)", metric);
  std::vector<int> bits = ctx.options.candidates;
  std::sort(bits.begin(), bits.end());
  for (int b : bits)
    MPQ_CHECK(b >= 2 && b <= 8, ErrorCode::kInvalidArgument,
              "candidate width {}: sensitivity candidates are 2..8", b);
  Context sorted{ctx.model, ctx.data, ctx.options};
  sorted.options.candidates = bits;
  std::sort(sorted.options.a_candidates.begin(), sorted.options.a_candidates.end());
  for (int a : sorted.options.a_candidates)
    MPQ_CHECK(a >= 2 && a <= 32, ErrorCode::kInvalidArgument,
              "activation candidate width {}: widths are 2..8, or 16/32 for float", a);
  auto start = std::chrono::steady_clock::now();
  Report r = m->compute(sorted);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (r.metric.empty()) r.metric = metric;
  r.model = ctx.model.source;
  return r;
}

nlohmann::json to_json(const Report& r) {
  nlohmann::json layers = nlohmann::json::array();
  for (size_t l = 0; l < r.layers.size(); ++l) {
    nlohmann::json omega = nlohmann::json::object();
    for (size_t k = 0; k < r.bits.size(); ++k) omega[std::to_string(r.bits[k])] = r.omega[l][k];
    nlohmann::json j{{"name", r.layers[l]}, {"params", r.params[l]}, {"omega", omega}};
    if (!r.importance.empty()) j["importance"] = r.importance[l];
    if (r.measures_activations()) {
      nlohmann::json a = nlohmann::json::object();
      for (size_t k = 0; k < r.a_bits.size(); ++k) a[std::to_string(r.a_bits[k])] = r.a_omega[l][k];
      j["a_omega"] = a;
    }
    layers.push_back(j);
  }
  nlohmann::json j{{"metric", r.metric}, {"model", r.model},     {"bits", r.bits},
                   {"layers", layers},   {"details", r.details}, {"seconds", r.seconds}};
  if (r.measures_activations()) j["a_bits"] = r.a_bits;
  return j;
}

namespace {

// A whole number in [lo, hi]: json's own conversion of 1e300 to int is undefined behaviour.
int64_t whole_number(const nlohmann::json& v, int64_t lo, int64_t hi, const std::string& what) {
  MPQ_CHECK(v.is_number() && v.get<double>() >= static_cast<double>(lo) &&
                v.get<double>() <= static_cast<double>(hi) &&
                v.get<double>() == std::floor(v.get<double>()),
            ErrorCode::kBadFile, "{} = {}: must be a whole number in [{}, {}]", what, v.dump(), lo,
            hi);
  return v.is_number_float() ? static_cast<int64_t>(v.get<double>()) : v.get<int64_t>();
}

}  // namespace

Report report_from_json(const nlohmann::json& j, const std::string& source) {
  Report r;
  try {
    r.metric = j.at("metric");
    r.model = j.value("model", "");
    for (const auto& b : j.at("bits"))
      r.bits.push_back(static_cast<int>(whole_number(b, 1, 32, source + ": \"bits\"")));
    if (j.contains("a_bits"))
      for (const auto& b : j.at("a_bits"))
        r.a_bits.push_back(static_cast<int>(whole_number(b, 1, 32, source + ": \"a_bits\"")));
    r.details = j.value("details", nlohmann::json::object());
    r.seconds = j.value("seconds", 0.0);
    for (const auto& l : j.at("layers")) {
      r.layers.push_back(l.at("name"));
      r.params.push_back(whole_number(l.at("params"), 0, int64_t{1} << 50,
                                      source + ": \"params\" of layer '" + r.layers.back() + "'"));
      std::vector<double> omega;
      for (int b : r.bits) omega.push_back(l.at("omega").at(std::to_string(b)));
      r.omega.push_back(omega);
      if (l.contains("importance")) r.importance.push_back(l["importance"]);
      if (!r.a_bits.empty()) {
        std::vector<double> a;
        for (int b : r.a_bits) a.push_back(l.at("a_omega").at(std::to_string(b)));
        r.a_omega.push_back(a);
      }
    }
  } catch (const nlohmann::json::exception& e) {
    fail(ErrorCode::kBadFile, "{}: not a sensitivity report: {}", source, e.what());
  }
  return r;
}

void save_report(const Report& report, const std::string& path) {
  write_file_atomic(path, to_json(report).dump(2) + "\n");
}

Report load_report(const std::string& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(path, "sensitivity report"));
  } catch (const nlohmann::json::exception& e) {  // a syntax error or a number out of range
    fail(ErrorCode::kBadFile, "{}: not valid JSON: {}", path, e.what());
  }
  return report_from_json(j, path);
}

LayerWeights folded_weights(const ir::Graph& model) {
  ir::Graph g = model;
  ir::fold_batch_norm(g);
  LayerWeights w;
  w.layers = ir::describe_layers(g, {});  // names and params; MACs are not needed here
  for (const ir::LayerInfo& l : w.layers) {
    const ir::Node& node = g.nodes[static_cast<size_t>(l.node)];
    w.weights.push_back(g.initializer(node.inputs[1]));
    w.axis.push_back(quant::weight_axis(node.op, node.attr_int("transB", 0) != 0));
  }
  return w;
}

std::vector<std::vector<double>> weight_errors(const LayerWeights& w, const std::vector<int>& bits,
                                               quant::WeightGrid grid) {
  // The same grid as quant::weight_scales(..., mse=false) + quantize_weight, in fewer ATen calls
  // (bn_scale's whole cost is this loop).
  c10::InferenceMode guard;
  std::vector<double> lo, hi;
  for (int b : bits) {
    quant::IntRange r = quant::weight_range(b, grid);
    lo.push_back(static_cast<double>(r.qmin));
    hi.push_back(static_cast<double>(r.qmax));
  }
  at::Tensor qmin = at::tensor(lo, at::kFloat).view({-1, 1, 1});  // [bits, 1, 1]
  at::Tensor qmax = at::tensor(hi, at::kFloat).view({-1, 1, 1});
  std::vector<std::vector<double>> out;
  for (size_t l = 0; l < w.weights.size(); ++l) {
    // All widths at once: [bits, C, K].
    at::Tensor m = w.weights[l].to(at::kFloat).transpose(0, w.axis[l]).reshape(
        {1, w.weights[l].size(w.axis[l]), -1});
    at::Tensor s =
        at::maximum(m.amax(2, true).clamp_min(0) / qmax, m.amin(2, true).clamp_max(0) / qmin)
            .clamp_min(1e-8);
    at::Tensor err = at::min(at::max((m / s).round_(), qmin), qmax).mul_(s).sub_(m);
    at::Tensor sums = err.square_().sum({1, 2}).to(at::kDouble).contiguous();
    out.emplace_back(sums.data_ptr<double>(), sums.data_ptr<double>() + sums.numel());
  }
  return out;
}

OutputReference::OutputReference(const ir::Graph& float_model, const data::Loader& data) {
  c10::InferenceMode guard;
  exec::Executor executor(float_model);
  for (int64_t b = 0; b < data.batches(); ++b) {
    inputs_.push_back(data.batch(b).images);
    outputs_.push_back(executor.forward(inputs_.back()).clone());
  }
}

double OutputReference::mse(const ir::Graph& model) const {
  c10::InferenceMode guard;
  exec::Executor executor(model);
  double se = 0;
  int64_t count = 0;
  for (size_t i = 0; i < inputs_.size(); ++i) {
    se += (executor.forward(inputs_[i]) - outputs_[i]).square().sum().item<double>();
    count += outputs_[i].numel();
  }
  return se / static_cast<double>(count);
}

Report importance_report(const LayerWeights& w, std::vector<double> importance,
                         const Options& options) {
  Report r;
  r.bits = options.candidates;
  bool per_element = options.per_weight_omega;
  auto errors = weight_errors(w, r.bits, options.weight_grid);
  for (size_t l = 0; l < w.layers.size(); ++l) {
    r.layers.push_back(w.layers[l].name);
    r.params.push_back(w.layers[l].params);
    double scale = importance[l] / (per_element ? static_cast<double>(w.layers[l].params) : 1.0);
    std::vector<double> row;
    for (double e : errors[l]) row.push_back(scale * e);
    r.omega.push_back(row);
  }
  r.importance = std::move(importance);
  r.details["omega"] =
      per_element ? "importance * |dW|^2 / n (per weight)" : "importance * |dW|^2 (layer total)";
  return r;
}

}  // namespace mpq::sensitivity
