// Rounding methods: how a QuantSim's weights are put on their grids. One file per method under
// src/ptq/rounding/, registered by name:  MPQ_REGISTER(Rounding, "nearest", Nearest);
// Calibration (scales and activation encodings) runs before; a method may use the calibration
// data to optimise the rounding (AdaRound, Attention Round: the reconstruction engine of
// mpq/ptq/reconstruction.h) and ends with every quantized weight exactly on its grid
// (QuantSim::set_weight_integers). What it did comes back as a RoundingReport.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mpq/core/registry.h"
#include "mpq/data/dataset.h"
#include "mpq/quant/quant_sim.h"

namespace mpq::ptq {

struct RoundingOptions {
  int64_t iters = 0;  // 0: the method's default
  bool progress = true;
  // Learned methods: reconstruct "layer" by layer or "block" by block (with LSQ activation
  // steps and QDrop probability `qdrop`).
  std::string granularity = "layer";
  double qdrop = 0;
};

// One reconstructed unit (a block, or a single layer): its output's squared error per image on
// the calibration set against the float model, with nearest rounding and after reconstruction.
struct UnitReport {
  std::string name;  // "first layer .. last layer"
  std::vector<std::string> layers;
  double nearest_loss = 0, loss = 0;
  bool kept_nearest = false;  // the reconstruction ended worse, so nearest rounding was kept
  int64_t iters = 0;
  double seconds = 0, peak_rss_mb = 0;
};

struct RoundingReport {
  std::string method, granularity;  // granularity empty for data-free methods
  std::vector<UnitReport> units;
  double seconds = 0;
};

nlohmann::json to_json(const RoundingReport& r);

class Rounding {
 public:
  virtual ~Rounding() = default;
  // `calib` is the calibration set (data-free methods ignore it).
  virtual RoundingReport apply(quant::QuantSim& sim, const data::Loader& calib,
                               const RoundingOptions& options) const = 0;
};

std::unique_ptr<Rounding> make_rounding(const std::string& name);

}  // namespace mpq::ptq
