// Layer-wise reconstruction shared by the learned rounding methods (AdaRound, Attention Round):
// layer by layer in graph order, the layer's quantized-model input (previous layers already
// rounded, activation quantizers on) and its float-model output are cached for the calibration
// images; a per-weight variable V is optimised with Adam so that the layer run on the cached
// inputs with the soft-rounded weight s·soft(V) reproduces the float output; then the weight is
// set to the hard integers (QuantSim::set_weight_integers).
#pragma once

#include <ATen/ATen.h>

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
  int64_t iters = 1000;
  int64_t batch = 32;
  double lr = 1e-3;
  bool progress = true;
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

}  // namespace mpq::quant
