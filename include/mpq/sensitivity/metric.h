// Layer sensitivity (DESIGN.md section 4): Ω_l(b), the expected damage of quantizing layer l's
// weights to b bits, for every quantized layer and candidate width. One file per metric under
// src/sensitivity/metrics/, registered by name:  MPQ_REGISTER(Metric, "bn_scale", BnScale);
//
// Most metrics are an importance per layer times the layer's total weight rounding error:
//   Ω_l(b) = I_l · ‖Q_b(W_l) − W_l‖²
// (DESIGN.md §4, HAWQ's form; `Options::per_weight_omega` divides by n_l as the first version
// did, for comparison only: it makes one weight of a small layer cost as much as the whole error
// of a big one, so the ILP starves the big layers), with ΔW from the BN-folded weight, per-channel
// grids (Options::weight_grid) scaled to hold every weight (data-free, fast, and the same for every
// metric, so metrics differ only in I_l).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mpq/core/registry.h"
#include "mpq/data/dataset.h"
#include "mpq/ir/graph.h"
#include "mpq/quant/quantizer.h"

namespace mpq::sensitivity {

struct Options {
  std::vector<int> candidates = {2, 3, 4, 5, 6, 8};
  uint64_t seed = 0;                // random, and Hutchinson's probe vectors
  int hutchinson_samples = 50;      // hessian_trace: at most this many probes
  double hutchinson_tolerance = 1e-3;  // stop when the running mean moves less (relative)
  std::string fallback;             // bn_scale on a model without BN: use this metric instead
  bool labels_from_model = false;   // imprint: the float model's predictions as labels
  double epsilon = 0.5;             // coding_length: distortion ε
  bool per_weight_omega = false;  // Ω = I·‖ΔW‖²/n_l instead of I·‖ΔW‖² (comparison only)
  quant::WeightGrid weight_grid = quant::kDefaultWeightGrid;  // the grid ΔW is measured on
  // Activation widths to measure (metrics that measure them: reconstructed); empty: none.
  std::vector<int> a_candidates;
  // reconstructed: the PTQ's rounding, on a short schedule.
  std::string rounding = "attention";
  std::string granularity = "block";
  double qdrop = 0.5;
  int64_t recon_iters = 100;
  bool progress = true;
};

struct Report {
  std::string metric, model;
  std::vector<std::string> layers;
  std::vector<int64_t> params;
  std::vector<int> bits;                   // candidate widths, ascending
  std::vector<std::vector<double>> omega;  // [layer][width index]
  std::vector<double> importance;          // I_l, when the metric has one
  // Measured activation damage Ω^a_l(a), when the metric measures it (else empty).
  std::vector<int> a_bits;                            // ascending
  std::vector<std::vector<double>> a_omega;           // [layer][a_bits index]
  nlohmann::json details = nlohmann::json::object();  // convergence, accuracy profile, ...
  double seconds = 0;

  // Ω of `layer` at `bits` (a candidate width; wider than every candidate: 0).
  double omega_at(size_t layer, int bits) const;
  bool measures_activations() const { return !a_bits.empty(); }
  // Ω^a of `layer` at activation width `bits` (wider than every measured width: 0; a width
  // between them that was not measured: an error saying how to measure it).
  double a_omega_at(size_t layer, int bits) const;
};

struct Context {
  const ir::Graph& model;              // as imported: BN kept when the file has it
  const data::Loader* data = nullptr;  // calibration data, for metrics that need it
  Options options;
};

class Metric {
 public:
  virtual ~Metric() = default;
  virtual bool needs_data() const { return false; }
  virtual Report compute(const Context& ctx) const = 0;
};

// Runs the named metric: checks it gets data if it needs it, times it, fills the common fields.
Report compute(const std::string& metric, const Context& ctx);

nlohmann::json to_json(const Report& report);
Report report_from_json(const nlohmann::json& j, const std::string& source);
void save_report(const Report& report, const std::string& path);
Report load_report(const std::string& path);

// What the metrics share: the BN-folded weights of the quantized layers and their rounding
// errors ‖Q_b(W_l) − W_l‖² at every candidate width.
struct LayerWeights {
  std::vector<ir::LayerInfo> layers;  // of the BN-folded model
  std::vector<at::Tensor> weights;
  std::vector<int> axis;
};
LayerWeights folded_weights(const ir::Graph& model);
std::vector<std::vector<double>> weight_errors(const LayerWeights& w, const std::vector<int>& bits,
                                               quant::WeightGrid grid);
// The float model's outputs on a data set, held once, and the mean squared difference of
// another model's outputs from them (output_mse and reconstructed measure damage this way).
class OutputReference {
 public:
  OutputReference(const ir::Graph& float_model, const data::Loader& data);
  double mse(const ir::Graph& model) const;

 private:
  std::vector<at::Tensor> inputs_, outputs_;
};

// A report with Ω_l(b) = importance_l · ‖ΔW_l(b)‖² (/ n_l with options.per_weight_omega), at
// the options' candidate widths; details["omega"] says which.
Report importance_report(const LayerWeights& w, std::vector<double> importance,
                         const Options& options);

}  // namespace mpq::sensitivity
