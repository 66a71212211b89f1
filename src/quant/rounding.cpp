#include "mpq/quant/rounding.h"

namespace mpq::quant {

std::unique_ptr<Rounding> make_rounding(const std::string& name) {
  return Registry<Rounding>::create(name, "rounding method");
}

}  // namespace mpq::quant
