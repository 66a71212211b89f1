#include "mpq/pipeline/compress.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <sstream>

#include "mpq/allocation/allocator.h"
#include "mpq/core/error.h"
#include "mpq/core/file.h"
#include "mpq/core/memory.h"
#include "mpq/core/progress.h"
#include "mpq/core/registry.h"
#include "mpq/eval/evaluate.h"
#include "mpq/eval/paired.h"
#include "mpq/exec/executor.h"
#include "mpq/export/packed.h"
#include "mpq/import/onnx_importer.h"
#include "mpq/pipeline/compress_state.h"
#include "mpq/quant/observer.h"

namespace mpq::pipeline {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Uniform = allocation::UniformWidths;

const std::vector<std::string> kStages = {"sensitivity", "allocation", "quantize",
                                          "evaluate",    "baselines",  "report"};

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// OUTDIR/compress.json: the fingerprint of the options and the stages finished so far.
class State {
 public:
  State(std::string dir, json config, bool resume) : dir_(std::move(dir)) {
    std::string path = file("compress.json");
    state_ = json{{"config", config}, {"stages", json::object()}};
    if (!resume) return;
    if (!file_exists(path)) {
      log_line(
          fmt::format("--resume: {} has no compress.json yet; starting from the beginning", dir_));
      return;
    }
    CompressState old =
        parse_compress_state(read_file(path, "compress state"), "--resume: " + path);
    std::string difference = config_difference(old.config, config);
    MPQ_CHECK(difference.empty(), ErrorCode::kInvalidArgument,
              "--resume: {} was made with {}: rerun without --resume, or write to another -o", dir_,
              difference);
    state_["stages"] = old.stages;
    resuming_ = true;
  }

  std::string file(const std::string& name) const { return (fs::path(dir_) / name).string(); }

  // Runs `stage` unless resuming finds it finished with all of `files` present (and every
  // stage before it was reused too).
  void run(const std::string& stage, const std::vector<std::string>& files,
           const std::function<void()>& body) {
    size_t number = std::find(kStages.begin(), kStages.end(), stage) - kStages.begin() + 1;
    bool done = resuming_ && state_["stages"].contains(stage);
    for (const auto& f : files) done = done && file_exists(file(f));
    if (done) {
      log_line(fmt::format("[{}/{}] {}: reusing {} from the earlier run", number, kStages.size(),
                           stage, fmt::join(files, ", ")));
      state_["stages"][stage]["reused"] = true;
      return;
    }
    resuming_ = false;  // everything after a stage that runs runs too
    auto start = std::chrono::steady_clock::now();
    body();
    state_["stages"][stage] = json{{"seconds", seconds_since(start)}, {"reused", false}};
    write_file_atomic(file("compress.json"), state_.dump(2) + "\n");
  }

  const json& stages() const { return state_["stages"]; }

 private:
  std::string dir_;
  json state_;
  bool resuming_ = false;
};

json load_json(const std::string& path) { return json::parse(read_file(path, "compress output")); }

// Cost-model figures of a plan, and of the float model.
json costs_of(const allocation::CostModel& costs, const allocation::BitPlan& plan) {
  return json{{"size_bytes", costs.total(allocation::CostKind::kSize, plan)},
              {"bops", costs.total(allocation::CostKind::kBops, plan)},
              {"avg_w_bits", costs.predicted(plan)["avg_w_bits"]}};
}

// Evaluates both models and writes what each predicted on every image to the two files (the
// float model's only when `float_predictions` is not empty).
json evaluate_pair(const ir::Graph& float_model, const ir::Graph& quantized,
                   const data::Loader& loader, bool progress, const std::string& data,
                   const std::string& float_predictions, const std::string& predictions,
                   const std::string& name) {
  eval::EvalResult f = eval::evaluate(float_model, loader, {progress, false});
  eval::EvalResult q = eval::evaluate(quantized, loader, {progress, false});
  if (!float_predictions.empty())
    eval::save_predictions({"float", data, f.labels, f.predictions}, float_predictions);
  eval::save_predictions({name, data, q.labels, q.predictions}, predictions);
  int64_t same = q.predictions.eq(f.predictions).sum().item<int64_t>();
  return json{{"images", f.images},
              {"float_top1", f.top1},
              {"float_top5", f.top5},
              {"top1", q.top1},
              {"top5", q.top5},
              {"agreement", 100.0 * static_cast<double>(same) / static_cast<double>(f.images)},
              {"changed", f.images - same}};
}

// The mixed plan against the best uniform baseline that fits the budgets and the cheapest one
// above them, paired on the same images: {"best_fitting": {...}, "cheapest_above": {...},
// "note": ...}, each with the baseline's name and top-1 and the paired difference.
json compare_with_uniform(const json& baselines,
                          const std::function<std::string(const std::string&)>& predictions) {
  json out = json::object();
  const json* best = nullptr;
  const json* above = nullptr;
  for (const json& b : baselines) {
    if (!b.contains("fits") || !file_exists(predictions(b["name"]))) continue;
    if (b["fits"].get<bool>()) {
      if (!best || b["top1"].get<double>() > (*best)["top1"].get<double>()) best = &b;
    } else if (!above || b["over_budget"].get<double>() < (*above)["over_budget"].get<double>()) {
      above = &b;
    }
  }
  eval::Predictions mixed = eval::load_predictions(predictions("model"));
  auto paired = [&](const json& b) {
    eval::PairedDifference d = eval::compare(mixed, eval::load_predictions(predictions(b["name"])));
    json j = eval::to_json(d);
    j["name"] = b["name"];
    return j;
  };
  if (best) out["best_fitting"] = paired(*best);
  if (above) out["cheapest_above"] = paired(*above);
  if (!best)
    out["note"] = baselines.empty() ? "no uniform baselines (--baselines none)"
                                    : "no uniform plan fits the budgets: nothing to compare "
                                      "against at the same cost";
  return out;
}

// The options checked before any work, so that a typo fails in a second.
void check_options(const CompressOptions& o) {
  MPQ_CHECK(!o.data.spec.empty(), ErrorCode::kInvalidArgument,
            "--data SPEC is required with a model: held-out labelled images to evaluate on, "
            "e.g. --data cifar10:test_1017.bin");
  MPQ_CHECK(!o.calib.spec.empty(), ErrorCode::kInvalidArgument,
            "--calib SPEC is required with a model: about 1024 training images, e.g. --calib "
            "cifar10:calib_train_5085.bin");
  MPQ_CHECK(o.method == "ilp" || o.method == "proportional" || o.method == "ssps",
            ErrorCode::kInvalidArgument, "--method {}: use ilp, proportional or ssps", o.method);
  MPQ_CHECK(o.stop_after.empty() || o.stop_after == "sensitivity" || o.stop_after == "allocation" ||
                o.stop_after == "quantize",
            ErrorCode::kInvalidArgument,
            "--stop-after {}: give sensitivity, allocation or quantize", o.stop_after);
  MPQ_CHECK(!o.budgets.empty(), ErrorCode::kInvalidArgument,
            "no budget: give one, e.g. --budget avg-w-bits=4");
  ptq::make_rounding(o.quant.rounding);  // unknown names fail before any work
  quant::make_observer(o.quant.calibration.observer);
  Registry<sensitivity::Metric>::create(o.sensitivity.metric, "sensitivity metric");
}

// The options each stage runs with, derived from the user's: the sensitivity measures
// activation damage when there are widths to choose from and reconstructs the way the PTQ will;
// SSPS searches the same widths and grid.
SensitivitySetup sensitivity_setup(const CompressOptions& o) {
  SensitivitySetup s = o.sensitivity;
  std::vector<int> a_widths = o.activation_widths();
  if (a_widths.size() > 1) s.options.a_candidates = a_widths;
  s.options.rounding = o.quant.rounding;
  s.options.granularity = o.quant.round.granularity;
  s.options.qdrop = o.quant.round.qdrop;
  s.options.weight_grid = o.quant.weight_grid;
  s.options.progress = o.progress;
  return s;
}

SspsSetup ssps_setup(const CompressOptions& o) {
  SspsSetup s = o.ssps;
  s.options.w_candidates = o.sensitivity.options.candidates;
  s.options.a_candidates = o.activation_widths();
  s.options.first_last_bits = o.first_last_bits;
  s.options.labels_from_model = o.sensitivity.options.labels_from_model;
  s.options.weight_grid = o.quant.weight_grid;
  s.options.progress = o.progress;
  return s;
}

ptq::QuantizeOptions quantize_options(const CompressOptions& o, const std::string& plan_source) {
  ptq::QuantizeOptions q = o.quant;
  q.calibration.progress = q.round.progress = o.progress;
  q.plan_source = plan_source;
  return q;
}

}  // namespace

CompressOptions::CompressOptions() {
  quant.rounding = "attention";  // block-wise with QDrop: the best in bench/rounding_table.sh
  quant.round.granularity = "block";
  quant.round.qdrop = 0.5;
  sensitivity.options.fallback = "output_mse";
}

std::vector<Uniform> parse_baselines(const std::string& text, const std::vector<int>& a_widths) {
  std::vector<Uniform> out;
  if (text == "none" || text == "auto") return out;
  std::stringstream in(text);
  std::string item;
  auto width = [&](const std::string& digits) {
    int b = 0;
    try {
      size_t used = 0;
      b = std::stoi(digits, &used);
      if (used != digits.size()) b = 0;
    } catch (const std::exception&) {
    }
    MPQ_CHECK(b >= 2 && b <= 8, ErrorCode::kInvalidArgument,
              "--baselines {}: '{}' is not a width 2..8 (give weight widths, W{{w}}A{{a}} names, "
              "'auto' or 'none')",
              text, item);
    return b;
  };
  while (std::getline(in, item, ',')) {
    size_t a = item.find('A');
    if (!item.empty() && item[0] == 'W' && a != std::string::npos) {
      out.push_back({width(item.substr(1, a - 1)), width(item.substr(a + 1))});
    } else {
      for (int ab : a_widths) out.push_back({width(item), ab});
    }
  }
  return out;
}

json compress(const ir::Graph& model, const CompressOptions& o) {
  check_options(o);
  std::vector<allocation::Budget> budgets;
  for (const auto& b : o.budgets) budgets.push_back(allocation::parse_budget(b));
  std::vector<int> a_widths = o.activation_widths();
  std::vector<Uniform> baseline_plans = parse_baselines(o.baselines, a_widths);
  SensitivitySetup sens = sensitivity_setup(o);
  SspsSetup ssps = ssps_setup(o);
  if (o.method == "ssps") search::check_options(ssps.options, budgets);

  allocation::CostModel costs(model);
  {  // an infeasible budget fails now, not after the sensitivity metric has run
    sensitivity::Report candidates;
    candidates.bits = o.sensitivity.options.candidates;
    allocation::Problem p = make_problem(candidates, costs, budgets, a_widths, o.first_last_bits);
    p.check_feasible();
    if (o.baselines == "auto")
      baseline_plans = allocation::uniform_baselines(p, exec::quantizable_layers(model));
  }

  fs::create_directories(fs::path(o.out) / "predictions");
  json config = fingerprint(o);
  State state(o.out, config, o.resume);
  auto stopped = [&](const std::string& stage) {
    return json{{"model", o.model_name},
                {"outdir", o.out},
                {"stopped_after", stage},
                {"stages", state.stages()}};
  };

  // 1. sensitivity
  state.run("sensitivity", {"sensitivity.json"}, [&] {
    log_line(
        fmt::format("[1/{}] sensitivity: {} on {}", kStages.size(), sens.metric, o.model_name));
    sensitivity::Report r = measure_sensitivity(model, sens, o.calib);
    sensitivity::save_report(r, state.file("sensitivity.json"));
    log_line(fmt::format("  {} layers x {} widths in {:.1f} s", r.layers.size(), r.bits.size(),
                         r.seconds));
  });
  sensitivity::Report report = sensitivity::load_report(state.file("sensitivity.json"));
  if (o.stop_after == "sensitivity") return stopped("sensitivity");

  OpenedData eval_data = open_data(o.data, model);  // checks the data fits before the long work

  // 2. allocation
  state.run("allocation", {"plan.json"}, [&] {
    log_line(fmt::format("[2/{}] allocation: {} under {}", kStages.size(), o.method,
                         fmt::join(o.budgets, ", ")));
    allocation::BitPlan plan;
    if (o.method == "ssps") {
      plan = search_ssps(model, ssps, o.calib, costs, budgets).plan;
    } else {
      allocation::Problem p = make_problem(report, costs, budgets, a_widths, o.first_last_bits);
      plan = allocation::allocate(o.method, p);
    }
    plan.model = o.model_name;
    allocation::save_bit_plan(plan, state.file("plan.json"));
  });
  allocation::BitPlan plan = allocation::load_bit_plan(state.file("plan.json"));
  allocation::check_plan(plan, exec::quantizable_layers(model), state.file("plan.json"));
  if (o.stop_after == "allocation") return stopped("allocation");

  // 3. quantize and export
  state.run("quantize", {"model.mpq", "model.qcdq.onnx", "encodings.json"}, [&] {
    log_line(fmt::format(
        "[3/{}] quantize: {} rounding{}, {} ranges, {} weight grid", kStages.size(),
        o.quant.rounding,
        o.quant.rounding == "nearest"
            ? std::string()
            : fmt::format(" ({}-wise, qdrop {})", o.quant.round.granularity, o.quant.round.qdrop),
        o.quant.calibration.observer, quant::name(o.quant.weight_grid)));
    quant::QuantSim sim =
        quantize(model, plan, o.calib, o.calib_count, quantize_options(o, state.file("plan.json")))
            .sim;
    save_quantized(sim, {state.file("model.mpq"), state.file("model.qcdq.onnx"),
                         state.file("encodings.json")});
  });
  if (o.stop_after == "quantize") return stopped("quantize");

  // 4. evaluate the float model and the exported one
  auto predictions = [&](const std::string& name) {
    return state.file("predictions/" + name + ".json");
  };
  state.run("evaluate", {"evaluation.json", "predictions/float.json", "predictions/model.json"},
            [&] {
              log_line(fmt::format("[4/{}] evaluate: float and model.mpq on {} ({} images)",
                                   kStages.size(), eval_data.spec.text, eval_data.loader->size()));
              json e = evaluate_pair(model, export_::load_packed(state.file("model.mpq")),
                                     *eval_data.loader, o.eval_progress, eval_data.spec.text,
                                     predictions("float"), predictions("model"), "mpq plan");
              e["data"] = eval_data.spec.text;
              write_file_atomic(state.file("evaluation.json"), e.dump(2) + "\n");
            });
  json evaluation = load_json(state.file("evaluation.json"));

  // 5. uniform baselines, one at a time (a resumed run keeps the finished ones)
  state.run("baselines", {"baselines.json"}, [&] {
    json done = json::array();
    if (o.resume && file_exists(state.file("baselines.json")))
      done = load_json(state.file("baselines.json"));
    allocation::Problem fits = make_problem(report, costs, budgets, a_widths, o.first_last_bits);
    for (size_t i = 0; i < baseline_plans.size(); ++i) {
      const Uniform& u = baseline_plans[i];
      std::string name = u.name();
      bool have = std::any_of(done.begin(), done.end(), [&](const json& d) {
        return d["name"] == name && file_exists(predictions(name));
      });
      if (have) continue;
      log_line(fmt::format("[5/{}] baselines: uniform {} ({}/{})", kStages.size(), name, i + 1,
                           baseline_plans.size()));
      ptq::QuantizeOptions q = quantize_options(o, "uniform " + name);
      if (u.w == 8) q.rounding = "nearest";  // learned rounding changes nothing at 8 bits
      allocation::BitPlan uniform =
          allocation::uniform_plan(exec::quantizable_layers(model), u.w, u.a, o.first_last_bits);
      quant::QuantSim sim = quantize(model, uniform, o.calib, o.calib_count, q).sim;
      json e = evaluate_pair(model, sim.frozen(), *eval_data.loader, o.eval_progress,
                             eval_data.spec.text, "", predictions(name), "uniform " + name);
      json point = costs_of(costs, sim.plan());
      point["name"] = name;
      point["w_bits"] = u.w;
      point["a_bits"] = u.a;
      point["top1"] = e["top1"];
      point["fits"] = fits.meets(sim.plan());
      point["over_budget"] = allocation::over_budget(fits, sim.plan());
      done.push_back(point);
      write_file_atomic(state.file("baselines.json"), done.dump(2) + "\n");
    }
    if (baseline_plans.empty()) write_file_atomic(state.file("baselines.json"), "[]\n");
  });
  json baselines = load_json(state.file("baselines.json"));
  json comparison = compare_with_uniform(baselines, predictions);

  // The results every report shows.
  allocation::BitPlan float_plan = plan;
  for (auto& l : float_plan.layers) l.w_bits = l.a_bits = 32;
  json r{{"model", o.model_name},
         {"outdir", o.out},
         {"config", config},
         {"float", costs_of(costs, float_plan)},
         {"quantized", costs_of(costs, plan)},
         {"evaluation", evaluation},
         {"baselines", baselines},
         {"comparison", comparison},
         {"metric", report.metric},
         {"rounding", o.quant.rounding},
         {"budgets", json::array()},
         {"layers", json::array()}};
  r["float"]["file_bytes"] = o.model_file_bytes;
  r["quantized"]["file_bytes"] = static_cast<int64_t>(fs::file_size(state.file("model.mpq")));
  for (const auto& b : budgets) {
    double value = costs.total(b.kind, plan);
    if (b.kind == allocation::CostKind::kAvgWBits) value = r["quantized"]["avg_w_bits"];
    r["budgets"].push_back({{"text", b.text},
                            {"limit_text", allocation::format_cost(b.kind, b.limit)},
                            {"value_text", allocation::format_cost(b.kind, value)}});
  }
  for (size_t l = 0; l < plan.layers.size(); ++l) {
    json omega = json::object();
    for (size_t k = 0; k < report.bits.size(); ++k)
      omega[std::to_string(report.bits[k])] = report.omega[l][k];
    r["layers"].push_back({{"name", plan.layers[l].name},
                           {"params", costs.layers()[l].params},
                           {"macs", costs.layers()[l].macs},
                           {"w_bits", plan.layers[l].w_bits},
                           {"a_bits", plan.layers[l].a_bits},
                           {"omega", omega}});
  }
  if (report.details.contains("accuracy_profile")) {
    r["imprint_profile"] = report.details["accuracy_profile"];
    r["imprint_input_accuracy"] = report.details.value("input_accuracy", 0.0);
  }

  // 6. report
  state.run("report", {"report.md", "report.html"}, [&] {
    log_line(fmt::format("[6/{}] report: report.md, report.html", kStages.size()));
    r["stages"] = state.stages();
    r["stage_order"] = kStages;
    write_file_atomic(state.file("report.md"), report_markdown(r));
    write_file_atomic(state.file("report.html"), report_html(r));
  });
  r["stages"] = state.stages();
  r["stage_order"] = kStages;
  r["peak_rss_mb"] = peak_rss_mb();
  return r;
}

}  // namespace mpq::pipeline
