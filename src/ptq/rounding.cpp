#include "mpq/ptq/rounding.h"

namespace mpq::ptq {

std::unique_ptr<Rounding> make_rounding(const std::string& name) {
  return Registry<Rounding>::create(name, "rounding method");
}

nlohmann::json to_json(const RoundingReport& r) {
  nlohmann::json units = nlohmann::json::array();
  for (const UnitReport& u : r.units)
    units.push_back({{"unit", u.name},
                     {"layers", u.layers},
                     {"nearest_loss", u.nearest_loss},
                     {"loss", u.loss},
                     {"kept_nearest", u.kept_nearest},
                     {"iters", u.iters},
                     {"seconds", u.seconds},
                     {"peak_rss_mb", u.peak_rss_mb}});
  return {{"method", r.method},
          {"granularity", r.granularity},
          {"seconds", r.seconds},
          {"units", units}};
}

}  // namespace mpq::ptq
