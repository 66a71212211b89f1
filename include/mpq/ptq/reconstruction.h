// The reconstruction engine shared by the learned rounding methods (AdaRound, Attention Round).
//
// A unit is a part of the simulation graph with one input and one output: a block
// (mpq/ptq/blocks.h, granularity "block") or a single layer (granularity "layer"). For each unit
// in graph order, with earlier units already rounded:
//   - Xq, the unit's input in the quantized model, and Yf, its output in the float model;
//   - the unit's rounding variables V (one SoftRounding per layer) and, for blocks, the step
//     sizes of its activation quantizers (LSQ) are optimised with torch::optim::Adam so that
//     the unit run on Xq with weights s·soft(V) reproduces Yf, each activation kept in float
//     with probability `qdrop` (QDrop);
//   - the weights become hard integers; if the unit's error on the calibration set is then
//     worse than with nearest rounding and the calibrated steps, those are restored;
//   - one UnitReport records both errors.
// Blocks are streamed: only the current block's inputs on the calibration set are held (Xq and
// the float Xf, computed in chunks of `chunk` images), and the rounded block maps Xq to the next
// block's Xq. A layer's inputs come from running the model up to it.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <memory>

#include "mpq/ptq/rounding.h"

namespace mpq::ptq {

// One layer's rounding variable and how it becomes (soft or hard) grid integers.
class SoftRounding {
 public:
  virtual ~SoftRounding() = default;
  // The variable for weights `w_over_s` (W / s per channel, float) on the grid `range`.
  virtual at::Tensor init(const at::Tensor& w_over_s, quant::IntRange range) = 0;
  // Soft integers in [qmin, qmax] (differentiable in v); `t` in [0, 1] is the progress.
  virtual at::Tensor soft(const at::Tensor& v, double t) = 0;
  // The regulariser added to the reconstruction loss (a zero tensor if none).
  virtual at::Tensor regularizer(const at::Tensor& v, double t) = 0;
  virtual at::Tensor hard(const at::Tensor& v) = 0;  // int8 integers
};

using SoftRoundingFactory = std::function<std::unique_ptr<SoftRounding>()>;

struct ReconstructionOptions {
  std::string granularity = "layer";  // "layer" or "block"
  int64_t iters = 1000;               // Adam steps per unit
  int64_t batch = 32;
  double lr = 1e-3;  // rounding variables
  bool progress = true;
  // Blocks only.
  double act_lr = 4e-5;  // activation step sizes (LSQ); 0 keeps the calibrated steps
  double qdrop = 0;      // probability of keeping an activation in float while optimising
  int64_t chunk = 64;    // images per forward pass when streaming block inputs
};

// Rounds every quantized weight of `sim` (and, for blocks, learns its activation steps).
// `method` names the rounding in messages and in the report.
RoundingReport reconstruct(quant::QuantSim& sim, const data::Loader& calib,
                           const ReconstructionOptions& options, const SoftRoundingFactory& make,
                           const std::string& method);

// What adaround and attention run: RoundingOptions over the method's defaults `r` (its learning
// rate): granularity and qdrop checked, `options.iters` (when set) replacing the iterations.
RoundingReport reconstruct(quant::QuantSim& sim, const data::Loader& calib,
                           const RoundingOptions& options, ReconstructionOptions r,
                           const SoftRoundingFactory& make, const std::string& method);

// The variables of the two learned methods (src/ptq/rounding/adaround.cpp, attention.cpp).
std::unique_ptr<SoftRounding> adaround_variable();
std::unique_ptr<SoftRounding> attention_variable(bool stochastic);

}  // namespace mpq::ptq
