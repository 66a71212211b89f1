// nearest: round every weight to the nearest point of its grid (after clipping). Data-free.
#include <c10/core/InferenceMode.h>

#include "mpq/ptq/rounding.h"

namespace mpq::ptq {
namespace {

class Nearest : public Rounding {
 public:
  RoundingReport apply(quant::QuantSim& sim, const data::Loader& /*calib*/,
                       const RoundingOptions& /*options*/) const override {
    c10::InferenceMode inference;
    for (size_t i = 0; i < sim.layers().size(); ++i)
      if (sim.layers()[i].quantizes_weight()) sim.set_weight_integers(i, sim.nearest_integers(i));
    RoundingReport report;
    report.method = "nearest";
    return report;
  }
};

MPQ_REGISTER(Rounding, "nearest", Nearest);

}  // namespace
}  // namespace mpq::ptq
