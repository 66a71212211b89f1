#include "mpq/pipeline/steps.h"

#include <fmt/format.h>

#include <optional>
#include <sstream>

#include "mpq/core/error.h"
#include "mpq/core/progress.h"
#include "mpq/core/registry.h"
#include "mpq/eval/evaluate.h"
#include "mpq/exec/executor.h"
#include "mpq/export/quantized.h"
#include "mpq/quant/observer.h"

namespace mpq::pipeline {
namespace {

std::vector<double> parse_list(const std::string& text, const std::string& key) {
  std::vector<double> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      out.push_back(std::stod(item));
    } catch (const std::exception&) {
      fail(ErrorCode::kBadFile, "model metadata '{}' = '{}': not a list of numbers", key, text);
    }
  }
  return out;
}

bool needs_data(const std::string& metric) {
  return Registry<sensitivity::Metric>::create(metric, "sensitivity metric")->needs_data();
}

}  // namespace

data::Preprocess preprocess_for(const DataSource& source, const ir::Graph& model,
                                const std::string& kind) {
  data::Preprocess p = data::default_preprocess(kind);
  auto meta = [&](const char* key) -> std::optional<std::vector<double>> {
    auto it = model.metadata.find(key);
    if (it == model.metadata.end()) return std::nullopt;
    return parse_list(it->second, key);
  };
  if (auto m = meta("mpq.mean")) p.mean = *m;
  if (auto s = meta("mpq.std")) p.std = *s;
  if (source.resize >= 0) p.resize = source.resize;
  if (source.crop >= 0) p.crop = source.crop;
  if (!source.mean.empty()) p.mean = source.mean;
  if (!source.std.empty()) p.std = source.std;
  for (double s : p.std)
    MPQ_CHECK(s > 0, ErrorCode::kInvalidArgument, "--std {}: every value must be positive", s);
  return p;
}

OpenedData open_data(const DataSource& source, const ir::Graph& model, int64_t first) {
  OpenedData d;
  d.spec = data::parse_spec(source.spec);
  d.dataset = data::open_dataset(d.spec);
  if (first > 0 && d.spec.count < 0 && d.dataset->size() > first) {
    d.spec.count = first;
    d.spec.text += fmt::format("@{}", first);
  }
  data::Preprocess pre = preprocess_for(source, model, d.spec.kind);
  d.loader = std::make_unique<data::Loader>(*d.dataset, d.spec, pre, source.batch);
  eval::check_data_fits(model, *d.dataset, *d.loader, pre, d.spec.text);
  return d;
}

sensitivity::Report measure_sensitivity(const ir::Graph& model, const SensitivitySetup& setup,
                                        const DataSource& data) {
  const sensitivity::Options& opts = setup.options;
  bool wants_data =
      needs_data(setup.metric) || (!opts.fallback.empty() && needs_data(opts.fallback));
  OpenedData d;
  if (wants_data) {
    MPQ_CHECK(!data.spec.empty(), ErrorCode::kInvalidArgument,
              "metric '{}' needs data: --data SPEC (training or calibration images)",
              opts.fallback.empty() ? setup.metric : opts.fallback);
    bool imprint = setup.metric == "imprint" || opts.fallback == "imprint";
    d = open_data(data, model, setup.count > 0 ? setup.count : imprint ? 1024 : 256);
    log_line(fmt::format("{}: {} images of {}", setup.metric, d.loader->size(), d.spec.text));
  }
  sensitivity::Context ctx{model, d.loader.get(), opts};
  return sensitivity::compute(setup.metric, ctx);
}

search::SspsResult search_ssps(const ir::Graph& model, const SspsSetup& setup,
                               const DataSource& data, const allocation::CostModel& costs,
                               const std::vector<allocation::Budget>& budgets) {
  search::check_options(setup.options, budgets, &costs);  // before the data is read
  MPQ_CHECK(!data.spec.empty(), ErrorCode::kInvalidArgument,
            "ssps needs data to search on: --data SPEC (about 1024 training images, e.g. "
            "cifar10:calib_train_5085.bin)");
  OpenedData d = open_data(data, model, setup.count);
  log_line(
      fmt::format("ssps: searching on {} ({} images, {})", d.spec.text, d.loader->size(),
                  setup.options.labels_from_model ? "distilling from the float model" : "labels"));
  return search::ssps(model, *d.loader, costs, budgets, setup.options);
}

ptq::QuantizedModel quantize(const ir::Graph& model, const allocation::BitPlan& plan,
                             const DataSource& calib, int64_t calib_count,
                             const ptq::QuantizeOptions& options) {
  ptq::make_rounding(options.rounding);  // unknown names fail before the long work
  quant::make_observer(options.calibration.observer);
  MPQ_CHECK(!calib.spec.empty(), ErrorCode::kInvalidArgument,
            "--calib is required with a model: about 1024 training images, e.g. --calib "
            "cifar10:calib_train_5085.bin");
  OpenedData c = open_data(calib, model, calib_count);
  log_line(fmt::format("calibrating on {} ({} images), {} ranges, {} weight scales", c.spec.text,
                       c.loader->size(), options.calibration.observer,
                       options.calibration.weight_mse ? "mse" : "max"));
  return ptq::quantize(model, plan, *c.loader, options);
}

export_::PackedInfo save_quantized(const quant::QuantSim& sim, const ExportPaths& paths) {
  export_::QuantizedModel exported = export_::export_quantized(sim);
  export_::save_qcdq(exported, paths.qcdq);
  export_::save_encodings(exported, paths.encodings);
  return export_::save_packed(exported, sim, paths.mpq);
}

allocation::Problem make_problem(const sensitivity::Report& report,
                                 const allocation::CostModel& costs,
                                 const std::vector<allocation::Budget>& budgets,
                                 const std::vector<int>& a_candidates, int first_last_bits) {
  for (int b : a_candidates)
    MPQ_CHECK(allocation::valid_bits(b), ErrorCode::kInvalidArgument,
              "activation width {}: widths are 2..8, or 16/32 for float", b);
  allocation::Problem p;
  p.sensitivity = &report;
  p.costs = &costs;
  p.w_candidates = report.bits;
  p.a_candidates = a_candidates;
  p.budgets = budgets;
  p.first_last_bits = first_last_bits;
  return p;
}

}  // namespace mpq::pipeline
