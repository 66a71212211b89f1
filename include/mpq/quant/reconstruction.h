// Layer-wise reconstruction shared by the learned rounding methods (AdaRound, Attention Round):
// layer by layer in graph order, the layer's quantized-model input (previous layers already
// rounded, activation quantizers on) and its float-model output are cached for the calibration
// images; a per-weight variable V is optimised with Adam so that the layer run on the cached
// inputs with the soft-rounded weight s·soft(V) reproduces the float output; then the weight is
// set to the hard integers (QuantSim::set_weight_integers).
#pragma once

#include <ATen/ATen.h>

#include <cmath>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>

#include "mpq/quant/rounding.h"

namespace mpq::quant {

// One layer's rounding variable and how it becomes (soft or hard) grid integers.
class SoftRounding {
 public:
  virtual ~SoftRounding() = default;
  // The variable for weights `w_over_s` (W / s per channel, float) on the grid `range`.
  virtual at::Tensor init(const at::Tensor& w_over_s, IntRange range) = 0;
  // Soft integers in [qmin, qmax] (differentiable in v); `t` in [0, 1] is the progress.
  virtual at::Tensor soft(const at::Tensor& v, double t) = 0;
  // The regulariser added to the reconstruction loss (a zero tensor if none).
  virtual at::Tensor regularizer(const at::Tensor& v, double t) = 0;
  virtual at::Tensor hard(const at::Tensor& v) = 0;  // int8 integers
};

struct ReconstructionOptions {
  int64_t iters = 1000;  // Adam steps per layer (layer-wise) or per block
  int64_t batch = 32;
  double lr = 1e-3;      // rounding variables
  bool progress = true;
  // Block-wise only (include/mpq/ptq/block_reconstruction.h).
  double act_lr = 4e-5;  // activation step sizes (LSQ); 0 keeps the calibrated steps
  double qdrop = 0;      // probability of keeping an activation in float while optimising
  int64_t chunk = 64;    // images per forward pass when streaming block inputs
};

// Adam (β 0.9 / 0.999, ε 1e-8) on one tensor, updated in place.
class Adam {
 public:
  Adam(const at::Tensor& param, double lr)
      : m_(at::zeros_like(param)), s_(at::zeros_like(param)), lr_(lr) {}
  void step(at::Tensor& param, const at::Tensor& grad) {
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    ++t_;
    m_.mul_(b1).add_(grad, 1 - b1);
    s_.mul_(b2).addcmul_(grad, grad, 1 - b2);
    double c1 = 1 - std::pow(b1, t_), c2 = 1 - std::pow(b2, t_);
    param.sub_(lr_ * (m_ / c1) / ((s_ / c2).sqrt() + eps));
  }

 private:
  at::Tensor m_, s_;
  double lr_;
  int64_t t_ = 0;
};

using SoftRoundingFactory = std::function<std::unique_ptr<SoftRounding>()>;

// The variables of the two learned methods (src/quant/rounding/adaround.cpp, attention.cpp).
std::unique_ptr<SoftRounding> adaround_variable();
std::unique_ptr<SoftRounding> attention_variable(bool stochastic);

// Rounds every quantized weight of `sim` this way, layer by layer; returns per-layer
// {name, loss before (nearest), loss after}.
nlohmann::json reconstruct_layers(QuantSim& sim, const data::Loader& calib,
                                  const ReconstructionOptions& options,
                                  const SoftRoundingFactory& make, const std::string& label);

// What adaround and attention run: `options.granularity` "layer" (reconstruct_layers) or
// "block" (ptq::reconstruct_blocks, with LSQ steps and QDrop), `r` holding the method's
// learning rate and `options.iters` (when set) replacing its iterations.
nlohmann::json reconstruct(QuantSim& sim, const data::Loader& calib, const RoundingOptions& options,
                           ReconstructionOptions r, const SoftRoundingFactory& make,
                           const std::string& label);

}  // namespace mpq::quant
