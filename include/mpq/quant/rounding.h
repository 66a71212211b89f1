// Rounding methods: how a QuantSim's weights are put on their grids. One file per method under
// src/quant/rounding/, registered by name:  MPQ_REGISTER(Rounding, "nearest", Nearest);
// Calibration (scales and activation encodings) runs before; a method may use the calibration
// data to optimise the rounding (AdaRound, Attention Round) and ends with every quantized
// weight exactly on its grid (QuantSim::set_weight_integers).
#pragma once

#include <memory>
#include <string>

#include "mpq/core/registry.h"
#include "mpq/data/dataset.h"
#include "mpq/quant/quant_sim.h"

namespace mpq::quant {

struct RoundingOptions {
  int64_t iters = 0;  // 0: the method's default
  bool progress = true;
  // Learned methods: reconstruct "layer" by layer or "block" by block (with LSQ activation
  // steps and QDrop probability `qdrop`).
  std::string granularity = "layer";
  double qdrop = 0;
};

class Rounding {
 public:
  virtual ~Rounding() = default;
  // `calib` is the calibration set (data-free methods ignore it).
  virtual void apply(QuantSim& sim, const data::Loader& calib,
                     const RoundingOptions& options) const = 0;
};

std::unique_ptr<Rounding> make_rounding(const std::string& name);

}  // namespace mpq::quant
