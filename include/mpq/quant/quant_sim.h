// QuantSim: the fake-quantized Graph for a BitPlan (DESIGN.md section 3).
//
// The model's BN is folded into its convs, then every quantized layer gets
//   - a per-output-channel weight quantizer  W -> mpq::FakeQuantize(W, s_w, 0) -> layer
//   - a per-tensor activation quantizer on its input  x -> mpq::FakeQuantize(x, s_a, z_a) -> layer
// for each width ≤ 8 (16/32: that side stays float). Quantizer scales and zero points are
// initializers of the Graph, so the executor runs the simulation and autograd sees straight-
// through gradients. Calibration collects activation statistics once on the float model;
// observers turn them into ranges; a rounding method puts the weights on their grid.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "mpq/allocation/bit_plan.h"
#include "mpq/data/dataset.h"
#include "mpq/ir/graph.h"
#include "mpq/quant/observer.h"
#include "mpq/quant/quantizer.h"

namespace mpq::quant {

struct QuantLayer {
  ir::LayerInfo info;
  int w_bits = 32, a_bits = 32;
  WeightGrid w_grid = kDefaultWeightGrid;
  int axis = 0;           // output-channel axis of the weight
  int weight = -1;        // value id of the float weight (an initializer)
  int weight_scale = -1;  // initializer [C]
  int weight_zero = -1;   // initializer int32 [C] (zeros)
  int input = -1;         // value id of the float activation the layer reads
  int input_scale = -1;   // initializer [1]
  int input_zero = -1;    // initializer int32 [1]
  Encoding encoding;      // the activation encoding (after calibration)
  double weight_mse = 0;  // mean squared rounding error of the weight (after rounding)

  bool quantizes_weight() const { return allocation::is_quantized(w_bits); }
  bool quantizes_input() const { return allocation::is_quantized(a_bits); }
  IntRange weight_range() const { return quant::weight_range(w_bits, w_grid); }
};

struct CalibrationOptions {
  std::string observer = "mse";  // activation ranges: minmax, percentile, mse
  ObserverOptions observer_options;
  bool weight_mse = true;  // weight scales: MSE-optimal clipping per channel (else max |w|)
  bool progress = true;
};

// Per value id: the statistics of every activation a quantized layer reads.
using CalibrationStats = std::map<int, ActivationStats>;

class QuantSim {
 public:
  // Checks the plan against the model's quantized layers (unknown / missing layers). Every
  // weight is quantized on `grid`.
  QuantSim(const ir::Graph& model, const allocation::BitPlan& plan,
           const std::string& plan_source = "bit plan", WeightGrid grid = kDefaultWeightGrid);

  // Runs the float model over `calib` once and keeps statistics of every quantized input.
  CalibrationStats collect(const data::Loader& calib, bool progress) const;
  // Sets activation encodings from `stats` with the named observer, and weight scales.
  void calibrate(const CalibrationStats& stats, const CalibrationOptions& options);
  // Both in one.
  void calibrate(const data::Loader& calib, const CalibrationOptions& options);

  // Integer weights of layer i on its grid by round-to-nearest.
  at::Tensor nearest_integers(size_t i) const;
  // Puts layer i's weight exactly on its grid: W = s · q (q int8, from a rounding method).
  void set_weight_integers(size_t i, const at::Tensor& q);
  // The integers the current weight stands for (exact once set_weight_integers ran).
  at::Tensor weight_integers(size_t i) const;

  const ir::Graph& graph() const { return graph_; }
  ir::Graph& graph() { return graph_; }
  // The BN-folded float model the simulation was built from (same value ids).
  const ir::Graph& float_graph() const { return float_; }
  // A copy with the weight quantizers evaluated once (fast evaluation, no autograd).
  ir::Graph frozen() const;

  std::vector<QuantLayer>& layers() { return layers_; }
  const std::vector<QuantLayer>& layers() const { return layers_; }
  const allocation::BitPlan& plan() const { return plan_; }
  WeightGrid weight_grid() const { return grid_; }
  const at::Tensor& float_weight(size_t i) const { return float_weights_[i]; }
  at::Tensor weight_scale(size_t i) const { return graph_.initializer(layers_[i].weight_scale); }

 private:
  ir::Graph float_, graph_;
  allocation::BitPlan plan_;
  WeightGrid grid_;
  std::vector<QuantLayer> layers_;
  std::vector<at::Tensor> float_weights_;  // the BN-folded weights before rounding
};

}  // namespace mpq::quant
