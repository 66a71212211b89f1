// mpq compress [MODEL] --data SPEC --calib SPEC --budget ... -o OUTDIR: the whole pipeline.
//
//   stage        writes (in OUTDIR)
//   sensitivity  sensitivity.json                       Ω_l(b) by --metric
//   allocation   plan.json                              bits under every --budget (ILP)
//   quantize     model.mpq, model.qcdq.onnx, encodings.json   calibrate, round, export
//   evaluate     evaluation.json, predictions/*.json    float model vs model.mpq on --data
//   baselines    baselines.json, predictions/*.json     uniform W{w}A{a} the same way
//   report       report.md, report.html                 tables and plots (Vega-Lite, inlined)
//
// compress.json records the options and each finished stage. `--resume` reuses every stage
// whose files are there (all outputs are written atomically, so a file that exists is whole)
// and redoes the first missing one and everything after it; the options must be the same.
//
// The mixed plan is compared with the uniform plans on the same images: the best uniform plan
// that fits every budget and the cheapest one above it, each with the paired difference in top-1
// and its 95 % bootstrap interval (eval/paired.h), in the summary and the reports.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <sstream>

#include "common.h"
#include "mpq/allocation/allocator.h"
#include "mpq/core/error.h"
#include "mpq/core/file.h"
#include "mpq/core/memory.h"
#include "mpq/core/progress.h"
#include "mpq/eval/evaluate.h"
#include "mpq/eval/paired.h"
#include "mpq/exec/executor.h"
#include "mpq/export/packed.h"
#include "mpq/export/quantized.h"
#include "mpq/pipeline/compress_state.h"
#include "mpq/ptq/rounding.h"
#include "mpq/quant/observer.h"
#include "report.h"

namespace mpq::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct Options {
  std::string model, out = "mpq_out", method = "ilp", baselines = "auto", stop_after;
  std::vector<std::string> budgets;
  int a_bits = 8;
  std::vector<int> a_candidates;  // empty: every layer at a_bits

  std::vector<int> activation_widths() const {
    return a_candidates.empty() ? std::vector<int>{a_bits} : a_candidates;
  }
  DataFlags data;
  QuantFlags quant;
  SensitivityFlags sens;
  SspsFlags ssps;
  bool resume = false, json = false;
};

const std::vector<std::string> kStages = {"sensitivity", "allocation", "quantize",
                                          "evaluate",    "baselines",  "report"};

// What must match for --resume to reuse a stage's files.
json config_of(const Options& o) {
  const DataFlags& d = o.data;
  json c{{"model", o.model.empty() ? kEmbeddedName : fs::absolute(o.model).string()},
         {"data", o.data.spec},
         {"calib", o.quant.calib},
         {"calib_count", o.quant.calib_count},
         {"preprocess", {{"resize", d.resize}, {"crop", d.crop}, {"mean", d.mean}, {"std", d.std}}},
         {"budgets", o.budgets},
         {"metric", o.sens.metric},
         {"fallback", o.sens.options.fallback},
         {"candidates", o.sens.options.candidates},
         {"data_count", o.sens.data_count},
         {"seed", o.sens.options.seed},
         {"per_weight_omega", o.sens.options.per_weight_omega},
         {"recon_iters", o.sens.options.recon_iters},
         {"method", o.method},
         {"a_bits", o.a_bits},
         {"a_candidates", o.a_candidates},
         {"first_last_bits", o.quant.first_last_bits},
         {"observer", o.quant.observer},
         {"percentile", o.quant.percentile},
         {"weight_observer", o.quant.weight_observer},
         {"rounding", o.quant.rounding},
         {"iters", o.quant.iters},
         {"granularity", o.quant.granularity},
         {"qdrop", o.quant.qdrop},
         {"baselines", o.baselines}};
  if (o.method == "ssps") {
    const search::SspsOptions& s = o.ssps.options;
    c["ssps"] = {{"steps", s.steps},      {"batch", s.batch},
                 {"round", s.round},      {"theta", s.theta},
                 {"tau", s.tau},          {"tau_end", s.tau_end},
                 {"lambda", s.lambda},    {"lr", s.lr},
                 {"step_lr", s.step_lr},  {"init_slope", s.init_slope},
                 {"count", o.ssps.count}, {"labels", o.sens.labels}};
  }
  return c;
}

using Uniform = allocation::UniformWidths;

// --baselines: "auto", "none", or a list of weight widths (at every activation width) and
// W{w}A{a} names.
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

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// OUTDIR/compress.json: the options and the stages finished so far.
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
    pipeline::CompressState old =
        pipeline::parse_compress_state(read_file(path, "compress state"), "--resume: " + path);
    std::string difference = pipeline::config_difference(old.config, config);
    MPQ_CHECK(difference.empty(), ErrorCode::kInvalidArgument,
              "--resume: {} was made with {}: rerun without --resume, or write to another -o", dir_,
              difference);
    state_["stages"] = old.stages;
    resuming_ = true;
  }

  std::string file(const std::string& name) const { return (fs::path(dir_) / name).string(); }

  // Runs `stage` unless --resume finds it finished with all of `files` present (and every
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

std::string comparison_line(const json& c) {
  return fmt::format(
      "{:+.2f} points, 95% CI [{:+.2f}, {:+.2f}]: {} ({} images only the mixed "
      "plan gets right, {} only {})",
      c["difference"].get<double>(), c["ci95"][0].get<double>(), c["ci95"][1].get<double>(),
      c["verdict"].get<std::string>(), c["a_only"].get<int64_t>(), c["b_only"].get<int64_t>(),
      c["name"].get<std::string>());
}

void print_summary(const json& r) {
  const json& e = r["evaluation"];
  fmt::print("\nmpq compress {} → {}\n", r["model"].get<std::string>(),
             r["outdir"].get<std::string>());
  fmt::print("  {:<22} {:>14} {:>14}\n", "", "float", "quantized");
  fmt::print("  {:<22} {:>13.2f}% {:>13.2f}%   ({:+.2f}; {} of {} predictions changed)\n", "top-1",
             e["float_top1"].get<double>(), e["top1"].get<double>(),
             e["top1"].get<double>() - e["float_top1"].get<double>(), e["changed"].get<int64_t>(),
             e["images"].get<int64_t>());
  fmt::print("  {:<22} {:>14} {:>14}   ({:.2f}x smaller: ONNX file vs model.mpq)\n", "size, bytes",
             r["float"]["file_bytes"].get<int64_t>(), r["quantized"]["file_bytes"].get<int64_t>(),
             r["float"]["file_bytes"].get<double>() / r["quantized"]["file_bytes"].get<double>());
  auto bops = [](const json& v) {
    return allocation::format_cost(allocation::CostKind::kBops, v.get<double>());
  };
  fmt::print("  {:<22} {:>14} {:>14}   ({:.2f}x fewer)\n", "BOPs per image",
             bops(r["float"]["bops"]), bops(r["quantized"]["bops"]),
             r["float"]["bops"].get<double>() / r["quantized"]["bops"].get<double>());
  fmt::print("  {:<22} {:>14} {:>14.3f}\n", "average weight bits", 32,
             r["quantized"]["avg_w_bits"].get<double>());
  for (const auto& b : r["budgets"])
    fmt::print("  budget {}: {} ≤ {}\n", b["text"].get<std::string>(),
               b["value_text"].get<std::string>(), b["limit_text"].get<std::string>());
  if (!r["baselines"].empty()) {
    fmt::print("\n  uniform baselines, same calibration and rounding:\n");
    for (const auto& b : r["baselines"])
      fmt::print("  {:<22} {:>13.2f}%   {} bytes of weights, {}{}\n", b["name"].get<std::string>(),
                 b["top1"].get<double>(), static_cast<int64_t>(b["size_bytes"].get<double>()),
                 bops(b["bops"]),
                 !b.contains("fits")     ? ""
                 : b["fits"].get<bool>() ? "; fits the budgets"
                                         : "; above the budgets");
  }
  const json& c = r["comparison"];
  fmt::print("\n  mixed plan, paired on the same {} images (bootstrap, 10000 resamples):\n",
             e["images"].get<int64_t>());
  if (c.contains("best_fitting"))
    fmt::print("  vs best uniform that fits ({}): {}\n",
               c["best_fitting"]["name"].get<std::string>(), comparison_line(c["best_fitting"]));
  if (c.contains("note")) fmt::print("  {}\n", c["note"].get<std::string>());
  if (c.contains("cheapest_above"))
    fmt::print("  vs cheapest uniform above ({}): {}\n",
               c["cheapest_above"]["name"].get<std::string>(),
               comparison_line(c["cheapest_above"]));
  fmt::print("\n  stage times:");
  double total = 0;
  for (const auto& s : kStages) {
    if (!r["stages"].contains(s)) continue;
    const json& st = r["stages"][s];
    total += st["seconds"].get<double>();
    fmt::print(" {} {:.1f} s{};", s, st["seconds"].get<double>(),
               st["reused"].get<bool>() ? " (reused)" : "");
  }
  fmt::print(" total {:.1f} s; peak memory {:.0f} MB\n", total, r["peak_rss_mb"].get<double>());
  fmt::print(
      "  wrote {}/{{plan.json, sensitivity.json, model.mpq, model.qcdq.onnx, "
      "encodings.json, report.md, report.html}}\n",
      r["outdir"].get<std::string>());
}

void run(Options& o) {
  set_quiet(o.json);
  bool progress = !o.json;
  // Evaluations are short: a bar on a terminal, but no lines in a log.
  bool eval_progress = progress && isatty(STDERR_FILENO);
  if (o.model.empty()) {
    if (o.data.spec.empty()) o.data.spec = kFashionTest;
    if (o.quant.calib.empty()) o.quant.calib = kFashionTrain;
  }
  MPQ_CHECK(!o.data.spec.empty(), ErrorCode::kInvalidArgument,
            "--data SPEC is required with a model: held-out labelled images to evaluate on, "
            "e.g. --data cifar10:test_1017.bin");
  MPQ_CHECK(!o.quant.calib.empty(), ErrorCode::kInvalidArgument,
            "--calib SPEC is required with a model: about 1024 training images, e.g. --calib "
            "cifar10:calib_train_5085.bin");
  MPQ_CHECK(o.method == "ilp" || o.method == "proportional" || o.method == "ssps",
            ErrorCode::kInvalidArgument, "--method {}: use ilp, proportional or ssps", o.method);
  MPQ_CHECK(o.stop_after.empty() || o.stop_after == "sensitivity" || o.stop_after == "allocation" ||
                o.stop_after == "quantize",
            ErrorCode::kInvalidArgument,
            "--stop-after {}: give sensitivity, allocation or quantize", o.stop_after);
  if (o.budgets.empty()) o.budgets = {"avg-w-bits=4"};
  std::vector<allocation::Budget> budgets;
  for (const auto& b : o.budgets) budgets.push_back(allocation::parse_budget(b));
  std::vector<int> a_widths = o.activation_widths();
  std::vector<Uniform> baseline_plans = parse_baselines(o.baselines, a_widths);
  if (o.method == "ssps") {
    search::SspsOptions s = o.ssps.options;
    s.w_candidates = o.sens.options.candidates;
    s.a_candidates = a_widths;
    search::check_options(s, budgets);
  }
  ptq::make_rounding(o.quant.rounding);  // unknown names fail before any work
  quant::make_observer(o.quant.observer);
  Registry<sensitivity::Metric>::create(o.sens.metric, "sensitivity metric");
  ir::Graph model = load_model(o.model);

  allocation::CostModel costs(model);
  {  // an infeasible budget fails now, not after the sensitivity metric has run
    sensitivity::Report candidates;
    candidates.bits = o.sens.options.candidates;
    allocation::Problem p =
        make_problem(candidates, costs, budgets, a_widths, o.quant.first_last_bits);
    p.check_feasible();
    if (o.baselines == "auto")
      baseline_plans = allocation::uniform_baselines(p, exec::quantizable_layers(model));
  }
  // The metric measures activation damage too when there are widths to choose from, and
  // `reconstructed` reconstructs the way this run's PTQ will.
  if (a_widths.size() > 1) o.sens.options.a_candidates = a_widths;
  o.sens.options.rounding = o.quant.rounding;
  o.sens.options.granularity = o.quant.granularity;
  o.sens.options.qdrop = o.quant.qdrop;

  fs::create_directories(fs::path(o.out) / "predictions");
  State state(o.out, config_of(o), o.resume);
  std::string model_name = o.model.empty() ? kEmbeddedName : o.model;
  DataFlags calib = o.data;
  calib.spec = o.quant.calib;
  auto stop = [&](const std::string& stage) { return stage == o.stop_after; };

  // 1. sensitivity
  state.run("sensitivity", {"sensitivity.json"}, [&] {
    log_line(
        fmt::format("[1/{}] sensitivity: {} on {}", kStages.size(), o.sens.metric, model_name));
    sensitivity::Report r = o.sens.run(model, o.model, calib, progress);
    sensitivity::save_report(r, state.file("sensitivity.json"));
    log_line(fmt::format("  {} layers x {} widths in {:.1f} s", r.layers.size(), r.bits.size(),
                         r.seconds));
  });
  sensitivity::Report report = sensitivity::load_report(state.file("sensitivity.json"));
  if (stop("sensitivity")) return;

  Data eval_data = open_data(o.data, model);  // checks the data fits before the long work

  // 2. allocation
  state.run("allocation", {"plan.json"}, [&] {
    log_line(fmt::format("[2/{}] allocation: {} under {}", kStages.size(), o.method,
                         fmt::join(o.budgets, ", ")));
    allocation::BitPlan plan;
    if (o.method == "ssps") {
      plan = o.ssps
                 .run(model, o.model, calib, costs, budgets, o.quant.first_last_bits,
                      o.sens.options.candidates, a_widths, o.sens.labels == "model", progress)
                 .plan;
    } else {
      allocation::Problem p =
          make_problem(report, costs, budgets, a_widths, o.quant.first_last_bits);
      plan = allocation::allocate(o.method, p);
    }
    plan.model = model_name;
    allocation::save_bit_plan(plan, state.file("plan.json"));
  });
  allocation::BitPlan plan = allocation::load_bit_plan(state.file("plan.json"));
  allocation::check_plan(plan, exec::quantizable_layers(model), state.file("plan.json"));
  if (stop("allocation")) return;

  // 3. quantize and export
  state.run("quantize", {"model.mpq", "model.qcdq.onnx", "encodings.json"}, [&] {
    log_line(
        fmt::format("[3/{}] quantize: {} rounding{}, {} ranges", kStages.size(), o.quant.rounding,
                    o.quant.rounding == "nearest"
                        ? std::string()
                        : fmt::format(" ({}-wise, qdrop {})", o.quant.granularity, o.quant.qdrop),
                    o.quant.observer));
    QuantFlags q = o.quant;
    q.plan = state.file("plan.json");
    quant::QuantSim sim = q.quantize(model, o.model, o.data, progress).sim;
    export_::QuantizedModel exported = export_::export_quantized(sim);
    export_::save_qcdq(exported, state.file("model.qcdq.onnx"));
    export_::save_encodings(exported, state.file("encodings.json"));
    export_::save_packed(exported, sim, state.file("model.mpq"));
  });
  if (stop("quantize")) return;

  // 4. evaluate the float model and the exported one
  auto predictions = [&](const std::string& name) {
    return state.file("predictions/" + name + ".json");
  };
  state.run("evaluate", {"evaluation.json", "predictions/float.json", "predictions/model.json"},
            [&] {
              log_line(fmt::format("[4/{}] evaluate: float and model.mpq on {} ({} images)",
                                   kStages.size(), eval_data.spec.text, eval_data.loader->size()));
              json e = evaluate_pair(model, load_model(state.file("model.mpq")), *eval_data.loader,
                                     eval_progress, eval_data.spec.text, predictions("float"),
                                     predictions("model"), "mpq plan");
              e["data"] = eval_data.spec.text;
              write_file_atomic(state.file("evaluation.json"), e.dump(2) + "\n");
            });
  json evaluation = load_json(state.file("evaluation.json"));

  // 5. uniform baselines, one at a time (a resumed run keeps the finished ones)
  state.run("baselines", {"baselines.json"}, [&] {
    json done = json::array();
    if (o.resume && file_exists(state.file("baselines.json")))
      done = load_json(state.file("baselines.json"));
    allocation::Problem fits =
        make_problem(report, costs, budgets, a_widths, o.quant.first_last_bits);
    for (size_t i = 0; i < baseline_plans.size(); ++i) {
      const Uniform& u = baseline_plans[i];
      std::string name = u.name();
      bool have = std::any_of(done.begin(), done.end(), [&](const json& d) {
        return d["name"] == name && file_exists(predictions(name));
      });
      if (have) continue;
      log_line(fmt::format("[5/{}] baselines: uniform {} ({}/{})", kStages.size(), name, i + 1,
                           baseline_plans.size()));
      QuantFlags q = o.quant;
      if (u.w == 8) q.rounding = "nearest";  // learned rounding changes nothing at 8 bits
      q.w_bits = u.w;
      q.a_bits = u.a;
      quant::QuantSim sim = q.quantize(model, o.model, o.data, progress).sim;
      json e = evaluate_pair(model, sim.frozen(), *eval_data.loader, eval_progress,
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
  json r{{"model", model_name},
         {"outdir", o.out},
         {"config", config_of(o)},
         {"float", costs_of(costs, float_plan)},
         {"quantized", costs_of(costs, plan)},
         {"evaluation", evaluation},
         {"baselines", baselines},
         {"comparison", comparison},
         {"metric", report.metric},
         {"rounding", o.quant.rounding},
         {"budgets", json::array()},
         {"layers", json::array()}};
  r["float"]["file_bytes"] = model_file_bytes(o.model);
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
  if (o.json) return print_json(r);
  print_summary(r);
}

}  // namespace

void add_compress(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "compress",
      "the whole pipeline: sensitivity, allocation, quantization, evaluation, export, report");
  auto o = std::make_shared<Options>();
  o->quant.rounding = "attention";  // block-wise with QDrop: the best in bench/rounding_table.sh
  o->quant.granularity = "block";
  o->quant.qdrop = 0.5;
  o->sens.options.fallback = "output_mse";
  cmd->add_option("model", o->model, "ONNX model (default: the embedded Fashion-MNIST model)");
  o->data.add(*cmd,
              "labelled evaluation data (default for the embedded model: Fashion-MNIST test)");
  o->sens.add(*cmd);
  o->quant.add(*cmd);
  // compress makes its own plans: the uniform-width and plan flags belong to `quantize`.
  for (const char* name : {"--plan", "--w-bits", "--a-bits"})
    cmd->remove_option(cmd->get_option(name));
  cmd->add_option("--budget", o->budgets,
                  "KIND=VALUE, repeatable: size=60KB, bops=1.2G, energy=40uJ, avg-w-bits=3 "
                  "(default avg-w-bits=4)");
  auto* a_bits = cmd->add_option("--a-bits", o->a_bits, "activation width of every layer")
                     ->capture_default_str();
  cmd->add_option("--a-candidates", o->a_candidates,
                  "let the allocation choose activation widths too, e.g. 2,3,4,8")
      ->delimiter(',')
      ->excludes(a_bits);
  cmd->add_option("--method", o->method,
                  "bit allocation: ilp or proportional (on the sensitivity), or ssps "
                  "(differentiable search on --calib)")
      ->capture_default_str();
  o->ssps.add(*cmd);
  // A fine-tuned model is a different model: `mpq search --method ssps --finetune` writes it.
  for (const char* name : {"--finetune", "--weight-lr"}) cmd->remove_option(cmd->get_option(name));
  cmd->add_option("--baselines", o->baselines,
                  "uniform plans to compare against, same calibration and rounding (nearest at "
                  "8): 'auto' (the widest that fit the budgets and the cheapest above), weight "
                  "widths (at each activation width), W{w}A{a} names, or 'none'")
      ->capture_default_str();
  cmd->add_option("-o,--output", o->out, "output directory (created if missing)")
      ->capture_default_str();
  cmd->add_flag("--resume", o->resume,
                "reuse the stages an earlier run with the same options finished in OUTDIR");
  cmd->add_option("--stop-after", o->stop_after,
                  "stop after this stage (sensitivity, allocation, quantize); --resume goes on");
  cmd->add_flag("--json", o->json, "print one JSON object with the results");
  cmd->callback([o] { run(*o); });
}

}  // namespace mpq::cli
