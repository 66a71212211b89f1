// The fingerprint of CompressOptions: every field of every options struct it is made of that can
// change a result. Fields that cannot (progress output, where files go, how errors name things)
// are bound and deliberately left out below.
//
// Each serializer opens its struct with a structured binding that names every field, so a field
// added to one of these structs fails to compile here ("N names provided ... M elements") until
// it is serialized or left out on purpose: a new option cannot silently let --resume reuse a
// stage computed without it.
#include "mpq/pipeline/compress.h"
#include "mpq/quant/quantizer.h"

namespace mpq::pipeline {
namespace {

using nlohmann::json;

json serialize(const DataSource& d) {
  const auto& [spec, resize, crop, mean, std, batch] = d;
  return json{{"spec", spec}, {"resize", resize}, {"crop", crop},
              {"mean", mean}, {"std", std},       {"batch", batch}};
}

json serialize(const ptq::QuantizeOptions& q) {
  [[maybe_unused]] const auto& [weight_grid, calibration, rounding, round, plan_source] = q;
  [[maybe_unused]] const auto& [observer, observer_options, weight_mse, calib_progress] =
      calibration;
  const auto& [percentile] = observer_options;
  [[maybe_unused]] const auto& [iters, round_progress, granularity, qdrop] = round;
  // Left out: plan_source (names the plan in errors) and the progress flags.
  return json{{"weight_grid", quant::name(weight_grid)},
              {"observer", observer},
              {"percentile", percentile},
              {"weight_observer", weight_mse ? "mse" : "max"},
              {"rounding", rounding},
              {"iters", iters},
              {"granularity", granularity},
              {"qdrop", qdrop}};
}

json serialize(const SensitivitySetup& s) {
  const auto& [metric, options, count] = s;
  [[maybe_unused]] const auto& [candidates, seed, hutchinson_samples, hutchinson_tolerance,
                                fallback, labels_from_model, epsilon, per_weight_omega, weight_grid,
                                a_candidates, rounding, granularity, qdrop, recon_iters, progress] =
      options;
  return json{{"metric", metric},
              {"count", count},
              {"candidates", candidates},
              {"seed", seed},
              {"hutchinson_samples", hutchinson_samples},
              {"hutchinson_tolerance", hutchinson_tolerance},
              {"fallback", fallback},
              {"labels_from_model", labels_from_model},
              {"epsilon", epsilon},
              {"per_weight_omega", per_weight_omega},
              {"weight_grid", quant::name(weight_grid)},
              {"a_candidates", a_candidates},
              {"rounding", rounding},
              {"granularity", granularity},
              {"qdrop", qdrop},
              {"recon_iters", recon_iters}};
}

json serialize(const SspsSetup& s) {
  const auto& [options, count] = s;
  [[maybe_unused]] const auto& [w_candidates, a_candidates, first_last_bits, steps, batch, round,
                                theta, tau, tau_end, lambda, init_slope, lr, step_lr, finetune,
                                weight_lr, labels_from_model, observer, weight_grid, seed,
                                progress] = options;
  return json{{"count", count},
              {"w_candidates", w_candidates},
              {"a_candidates", a_candidates},
              {"first_last_bits", first_last_bits},
              {"steps", steps},
              {"batch", batch},
              {"round", round},
              {"theta", theta},
              {"tau", tau},
              {"tau_end", tau_end},
              {"lambda", lambda},
              {"init_slope", init_slope},
              {"lr", lr},
              {"step_lr", step_lr},
              {"finetune", finetune},
              {"weight_lr", weight_lr},
              {"labels_from_model", labels_from_model},
              {"observer", observer},
              {"weight_grid", quant::name(weight_grid)},
              {"seed", seed}};
}

}  // namespace

json fingerprint(const CompressOptions& o) {
  [[maybe_unused]] const auto& [model_name, model_file_bytes, out, data, calib, calib_count,
                                budgets, method, a_bits, a_candidates, first_last_bits, baselines,
                                sensitivity, ssps, quant, stop_after, resume, progress,
                                eval_progress] = o;
  // Left out: out, stop_after, resume and the progress flags change no result;
  // model_file_bytes is the model's, which model_name names.
  json c{{"model", model_name},
         {"data", serialize(data)},
         {"calib", serialize(calib)},
         {"calib_count", calib_count},
         {"budgets", budgets},
         {"method", method},
         {"a_bits", a_bits},
         {"a_candidates", a_candidates},
         {"first_last_bits", first_last_bits},
         {"baselines", baselines},
         {"sensitivity", serialize(sensitivity)},
         {"quant", serialize(quant)}};
  if (method == "ssps") c["ssps"] = serialize(ssps);  // other methods do not read it
  return c;
}

}  // namespace mpq::pipeline
