// mpq sensitivity MODEL --metric NAME [--data SPEC] -o report.json: Ω_l(b) for every quantized
// layer and candidate width, as a table and a JSON report (mpq search --sensitivity reads it).
#include <fmt/format.h>

#include "common.h"
#include "mpq/core/error.h"
#include "mpq/core/progress.h"
#include "mpq/data/dataset.h"
#include "mpq/sensitivity/metric.h"

namespace mpq::cli {

void SensitivityFlags::add(CLI::App& app, bool weight_grid_flag) {
  if (weight_grid_flag) add_weight_grid_flag(app, &options.weight_grid);
  app.add_option("--metric", metric, "sensitivity metric: " + Registry<sensitivity::Metric>::list())
      ->capture_default_str();
  app.add_option("--candidates", options.candidates, "candidate weight widths")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--samples", options.hutchinson_samples,
                 "hessian_trace: at most this many Hutchinson probes")
      ->capture_default_str();
  app.add_option("--data-count", data_count,
                 "images used when the data spec has no @N (hessian_trace and output_mse: 256, "
                 "imprint: 1024)");
  app.add_option("--fallback", options.fallback,
                 "bn_scale on a model without BN: use this metric instead (e.g. output_mse)");
  app.add_option("--labels", labels,
                 "imprint: 'data' (ground truth) or 'model' (float predictions)")
      ->check(CLI::IsMember({"data", "model"}))
      ->capture_default_str();
  app.add_option("--epsilon", options.epsilon, "coding_length: distortion")->capture_default_str();
  app.add_option("--seed", options.seed, "random and Hutchinson seed")->capture_default_str();
  app.add_option_function<std::string>(
         "--omega", [this](const std::string& v) { options.per_weight_omega = v == "per-weight"; },
         "Ω = importance × the layer's total squared weight error ('total', the default), or "
         "divided by its weight count ('per-weight', the old form, for comparison)")
      ->check(CLI::IsMember({"total", "per-weight"}));
  app.add_option("--recon-iters", options.recon_iters,
                 "reconstructed: iterations of the short reconstruction per layer and width")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
}

pipeline::SensitivitySetup SensitivityFlags::setup(bool progress) const {
  pipeline::SensitivitySetup s{metric, options, data_count};
  s.options.labels_from_model = labels == "model";
  s.options.progress = progress;
  return s;
}

sensitivity::Report SensitivityFlags::run(const ir::Graph& model, const std::string& model_path,
                                          DataFlags data, bool progress) const {
  if (data.spec.empty() && model_path.empty()) data.spec = kFashionTrain;
  return pipeline::measure_sensitivity(model, setup(progress), data);
}

void print_report(const sensitivity::Report& r) {
  size_t width = 5;
  for (const auto& l : r.layers) width = std::max(width, l.size());
  fmt::print("{:<{}}  {:>9}  {:>10}", "layer", width, "params", "importance");
  for (int b : r.bits) fmt::print("  {:>9}", fmt::format("Ω({})", b));
  for (int a : r.a_bits) fmt::print("  {:>9}", fmt::format("Ωa({})", a));
  fmt::print("\n");
  for (size_t l = 0; l < r.layers.size(); ++l) {
    fmt::print("{:<{}}  {:>9}  {:>10}", r.layers[l], width, r.params[l],
               r.importance.empty() ? std::string("-") : fmt::format("{:.4g}", r.importance[l]));
    for (double o : r.omega[l]) fmt::print("  {:>9.3g}", o);
    if (r.measures_activations())
      for (double o : r.a_omega[l]) fmt::print("  {:>9.3g}", o);
    fmt::print("\n");
  }
  fmt::print("\n{} on {}: {:.3f} s\n", r.metric, r.model, r.seconds);
}

void add_sensitivity(CLI::App& app) {
  auto* cmd = app.add_subcommand("sensitivity",
                                 "per-layer sensitivity to each weight width, as a JSON report");
  struct Opts {
    std::string model, out;
    DataFlags data;
    SensitivityFlags flags;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("model", o->model, "ONNX model (default: the embedded Fashion-MNIST model)");
  o->flags.add(*cmd);
  cmd->add_option("--a-candidates", o->flags.options.a_candidates,
                  "activation widths to measure too (metrics that measure them: reconstructed)")
      ->delimiter(',');
  o->data.add(*cmd, "data for the metrics that need it");
  cmd->add_option("-o,--output", o->out, "write the report (JSON) here");
  cmd->add_flag("--json", o->json, "print the report as one JSON object");
  cmd->callback([o] {
    set_quiet(o->json);
    check_output_dir(o->out);
    ir::Graph model = load_model(o->model);
    sensitivity::Report r = o->flags.run(model, o->model, o->data, !o->json);
    if (!o->out.empty()) sensitivity::save_report(r, o->out);
    if (o->json) {
      print_json(sensitivity::to_json(r));
      return;
    }
    print_report(r);
    if (r.details.contains("accuracy_profile")) {
      fmt::print("imprint accuracy after each layer (input: {:.2f}%):",
                 r.details["input_accuracy"].get<double>());
      for (const auto& p : r.details["accuracy_profile"])
        fmt::print(" {:.1f}", p["accuracy"].get<double>());
      fmt::print("\n");
    }
    if (r.details.contains("samples"))
      fmt::print("Hutchinson: {} probes on {} images\n", r.details["samples"].get<int>(),
                 r.details["images"].get<int64_t>());
    if (!o->out.empty()) fmt::print("wrote {}\n", o->out);
  });
}

}  // namespace mpq::cli
