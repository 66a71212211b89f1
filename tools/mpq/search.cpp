// mpq search MODEL --budget KIND=VALUE ... -o plan.json: bit widths under every budget given,
// by a sensitivity metric and an allocator (ILP, the proportional rule, or a Pareto sweep), or
// by SSPS, the differentiable single-path search (--method ssps). The plan feeds
// `mpq quantize --plan`.
#include <fmt/format.h>

#include <chrono>
#include <filesystem>

#include "common.h"
#include "mpq/allocation/allocator.h"
#include "mpq/core/error.h"
#include "mpq/core/file.h"
#include "mpq/core/progress.h"
#include "mpq/export/onnx_writer.h"

namespace mpq::cli {

void SspsFlags::add(CLI::App& app) {
  auto& s = options;
  app.add_option("--steps", s.steps, "ssps: search steps at most")->capture_default_str();
  app.add_option("--search-batch", s.batch, "ssps: images per step")->capture_default_str();
  app.add_option("--round", s.round, "ssps: steps between fixing rounds (K)")
      ->capture_default_str();
  app.add_option("--theta", s.theta, "ssps: certainty (max softmax) that fixes a layer's width")
      ->capture_default_str();
  app.add_option("--tau", s.tau, "ssps: softmax temperature at the start")->capture_default_str();
  app.add_option("--tau-end", s.tau_end, "ssps: ... and at the end (annealed geometrically)")
      ->capture_default_str();
  app.add_option("--lambda", s.lambda, "ssps: weight of the budget penalty in the loss")
      ->capture_default_str();
  app.add_option("--init-slope", s.init_slope,
                 "ssps: initial logits slope·bits (> 0 starts the search near the wide widths)")
      ->capture_default_str();
  app.add_option("--lr", s.lr, "ssps: learning rate of the width logits (Adam)")
      ->capture_default_str();
  app.add_option("--step-lr", s.step_lr,
                 "ssps: learning rate of the candidates' step sizes (0: keep the calibrated ones)")
      ->capture_default_str();
  app.add_flag("--finetune", s.finetune,
               "ssps: train the weights jointly (writes the tuned model beside the plan)");
  app.add_option("--weight-lr", s.weight_lr, "ssps --finetune: learning rate of the weights")
      ->capture_default_str();
  app.add_option("--search-count", count, "ssps: search images when the spec has no @N")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
}

search::SspsResult SspsFlags::run(const ir::Graph& model, const std::string& model_path,
                                  DataFlags data, const allocation::CostModel& costs,
                                  const std::vector<allocation::Budget>& budgets,
                                  int first_last_bits, const std::vector<int>& w_candidates,
                                  const std::vector<int>& a_candidates, bool labels_from_model,
                                  bool progress) const {
  pipeline::SspsSetup s{options, count};
  s.options.w_candidates = w_candidates;
  s.options.a_candidates = a_candidates;
  s.options.first_last_bits = first_last_bits;
  s.options.labels_from_model = labels_from_model;
  s.options.progress = progress;
  if (data.spec.empty() && model_path.empty()) data.spec = kFashionTrain;
  return pipeline::search_ssps(model, s, data, costs, budgets);
}

namespace {

void print_costs(const allocation::BitPlan& plan, const allocation::CostModel& costs,
                 const std::vector<allocation::Budget>& budgets) {
  fmt::print("\npredicted: size {}, {:.4g} GBOPs, energy {}, average weight width {:.3f} bits{}\n",
             allocation::format_cost(allocation::CostKind::kSize, plan.predicted["size_bytes"]),
             plan.predicted["bops"].get<double>() / 1e9,
             allocation::format_cost(allocation::CostKind::kEnergy, plan.predicted["energy_pj"]),
             plan.predicted["avg_w_bits"].get<double>(),
             costs.has_latency()
                 ? fmt::format(", latency {:.4g} ms", plan.predicted["latency_ms"].get<double>())
                 : "");
  for (const auto& b : budgets)
    fmt::print("budget {}: {} ≤ {}\n", b.text,
               allocation::format_cost(b.kind, costs.total(b.kind, plan)),
               allocation::format_cost(b.kind, b.limit));
}

template <typename Opts>
void search_ssps(Opts& o, const ir::Graph& model, const allocation::CostModel& costs,
                 const std::vector<allocation::Budget>& budgets,
                 const std::vector<int>& a_candidates) {
  MPQ_CHECK(o.report.empty(), ErrorCode::kInvalidArgument,
            "--sensitivity {}: ssps searches on data, not on a sensitivity report; drop one of "
            "the two",
            o.report);
  MPQ_CHECK(!o.ssps.options.finetune || !o.out.empty(), ErrorCode::kInvalidArgument,
            "--finetune trains the weights: give -o plan.json so the tuned model can be written "
            "beside it");
  std::string tuned_path;
  if (o.ssps.options.finetune) {
    std::filesystem::path p(o.out);
    tuned_path = (p.parent_path() / (p.stem().string() + ".finetuned.onnx")).string();
  }
  o.ssps.options.weight_grid = o.flags.options.weight_grid;
  search::SspsResult r =
      o.ssps.run(model, o.model, o.data, costs, budgets, o.first_last_bits,
                 o.flags.options.candidates, a_candidates, o.flags.labels == "model", !o.json);
  allocation::BitPlan& plan = r.plan;
  plan.model = o.model.empty() ? kEmbeddedName : o.model;
  if (!tuned_path.empty()) {
    export_::save_onnx(r.finetuned, tuned_path);
    plan.model = tuned_path;
    plan.predicted["ssps"]["finetuned_model"] = tuned_path;
  }
  if (!o.out.empty()) allocation::save_bit_plan(plan, o.out);
  if (o.json) return print_json(allocation::to_json(plan));

  size_t width = 5;
  for (const auto& l : plan.layers) width = std::max(width, l.name.size());
  fmt::print("{:<{}}  {:>9}  {:>12}  {:>2}  {:>2}\n", "layer", width, "params", "MACs", "W", "A");
  for (size_t l = 0; l < plan.layers.size(); ++l)
    fmt::print("{:<{}}  {:>9}  {:>12}  {:>2}  {:>2}\n", plan.layers[l].name, width,
               costs.layers()[l].params, costs.layers()[l].macs, plan.layers[l].w_bits,
               plan.layers[l].a_bits);
  fmt::print("\nsearch space per round (open layers, log2 of the remaining combinations):\n");
  for (const auto& round : r.rounds)
    fmt::print("  step {:>5}: {:>3} layers open, 2^{:<6.1f} fixed {:>2}\n",
               round["step"].get<int64_t>(), round["open_layers"].get<int>(),
               round["log2_space"].get<double>(), round["fixed"].size());
  print_costs(plan, costs, budgets);
  fmt::print("ssps search: {} steps, {:.1f} s{}\n", plan.predicted["ssps"]["steps"].get<int64_t>(),
             r.seconds,
             plan.predicted["ssps"]["repaired_layers"].get<int>() > 0
                 ? fmt::format(", greedy repair narrowed {} layer(s)",
                               plan.predicted["ssps"]["repaired_layers"].get<int>())
                 : "");
  if (!tuned_path.empty()) fmt::print("wrote {}\n", tuned_path);
  if (!o.out.empty()) fmt::print("wrote {}\n", o.out);
}

}  // namespace

void add_search(CLI::App& app) {
  auto* cmd = app.add_subcommand("search", "find per-layer bit-widths under budgets");
  struct Opts {
    std::string model, out, report, method = "ilp", latency_table;
    std::vector<std::string> budgets;
    int a_bits = 8;
    std::vector<int> a_candidates;
    int first_last_bits = 8;
    int points = 8;
    DataFlags data;
    SensitivityFlags flags;
    SspsFlags ssps;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("model", o->model, "ONNX model (default: the embedded Fashion-MNIST model)");
  o->flags.add(*cmd);
  o->data.add(*cmd, "data for the metrics that need it, and for ssps");
  cmd->add_option("--sensitivity", o->report,
                  "use this report (mpq sensitivity -o) instead of "
                  "running --metric");
  cmd->add_option("--budget", o->budgets,
                  "KIND=VALUE, repeatable: size=60KB, bops=1.2G, latency=5ms, energy=40uJ, "
                  "avg-w-bits=3 (default avg-w-bits=4)");
  auto* a = cmd->add_option("--a-bits", o->a_bits, "activation width of every layer")
                ->capture_default_str();
  cmd->add_option("--a-candidates", o->a_candidates, "let the search choose activation widths")
      ->delimiter(',')
      ->excludes(a);
  auto* method =
      cmd->add_option("--method", o->method,
                      "ilp, proportional or pareto (a sweep) on --metric's sensitivity, or ssps "
                      "(differentiable single-path search on --data)")
          ->check(CLI::IsMember({"ilp", "proportional", "pareto", "ssps"}))
          ->capture_default_str();
  cmd->add_option("--allocator", o->method, "the same as --method")
      ->check(CLI::IsMember({"ilp", "proportional", "pareto", "ssps"}))
      ->excludes(method);
  o->ssps.add(*cmd);
  cmd->add_option("--points", o->points, "pareto: budgets in the sweep")->capture_default_str();
  cmd->add_option("--latency-table", o->latency_table, "measured per-layer latency (JSON)");
  cmd->add_option("--first-last-bits", o->first_last_bits,
                  "width of the first and last layer (0: searched like the rest)")
      ->capture_default_str();
  cmd->add_option("-o,--output", o->out, "write the plan (pareto: the frontier) here");
  cmd->add_flag("--json", o->json, "print the result as one JSON object");
  cmd->callback([o] {
    set_quiet(o->json);
    check_output_dir(o->out);
    if (o->budgets.empty()) {
      o->budgets = {"avg-w-bits=4"};
      log_line("no --budget given: avg-w-bits=4");
    }
    std::vector<allocation::Budget> budgets;
    for (const auto& b : o->budgets) budgets.push_back(allocation::parse_budget(b));
    ir::Graph model = load_model(o->model);
    allocation::LatencyTable lut;
    if (!o->latency_table.empty()) lut = allocation::load_latency_table(o->latency_table);
    allocation::CostModel costs(model, o->latency_table.empty() ? nullptr : &lut);
    std::vector<int> a_candidates =
        o->a_candidates.empty() ? std::vector<int>{o->a_bits} : o->a_candidates;
    if (o->method == "ssps") return search_ssps(*o, model, costs, budgets, a_candidates);
    if (a_candidates.size() > 1) o->flags.options.a_candidates = a_candidates;

    sensitivity::Report report = o->report.empty()
                                     ? o->flags.run(model, o->model, o->data, !o->json)
                                     : sensitivity::load_report(o->report);
    double sens_seconds = o->report.empty() ? report.seconds : 0.0;
    allocation::Problem p = make_problem(report, costs, budgets, a_candidates, o->first_last_bits);

    auto t = std::chrono::steady_clock::now();
    if (o->method == "pareto") {
      nlohmann::json frontier = allocation::pareto(p, o->points);
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
      nlohmann::json result{{"metric", report.metric}, {"frontier", frontier}, {"seconds", secs}};
      if (!o->out.empty()) write_file_atomic(o->out, result.dump(2) + "\n");
      if (o->json) return print_json(result);
      fmt::print("{:>14}  {:>12}  {:>14}  {:>10}  {:>12}\n",
                 budgets[0].text.substr(0, budgets[0].text.find('=')), "size", "BOPs", "avg bits",
                 "Σ Ω");
      for (const auto& pt : frontier)
        fmt::print(
            "{:>14.4g}  {:>12}  {:>14.4g}  {:>10.3f}  {:>12.4g}\n", pt["budget"].get<double>(),
            allocation::format_cost(allocation::CostKind::kSize, pt["predicted"]["size_bytes"]),
            pt["predicted"]["bops"].get<double>(), pt["predicted"]["avg_w_bits"].get<double>(),
            pt["predicted"]["omega"].get<double>());
      fmt::print("pareto sweep with {} ({} points): {:.2f} s\n", report.metric, frontier.size(),
                 secs);
      if (!o->out.empty()) fmt::print("wrote {}\n", o->out);
      return;
    }
    allocation::BitPlan plan = allocation::allocate(o->method, p);
    double alloc_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
    plan.model = o->model.empty() ? kEmbeddedName : o->model;
    plan.predicted["sensitivity_seconds"] = sens_seconds;
    plan.predicted["allocation_seconds"] = alloc_seconds;
    if (!o->out.empty()) allocation::save_bit_plan(plan, o->out);
    if (o->json) return print_json(allocation::to_json(plan));

    size_t width = 5;
    for (const auto& l : plan.layers) width = std::max(width, l.name.size());
    fmt::print("{:<{}}  {:>9}  {:>2}  {:>2}  {:>10}\n", "layer", width, "params", "W", "A", "Ω");
    for (size_t l = 0; l < plan.layers.size(); ++l)
      fmt::print("{:<{}}  {:>9}  {:>2}  {:>2}  {:>10.3g}\n", plan.layers[l].name, width,
                 costs.layers()[l].params, plan.layers[l].w_bits, plan.layers[l].a_bits,
                 p.omega(l, plan.layers[l].w_bits, plan.layers[l].a_bits));
    print_costs(plan, costs, budgets);
    fmt::print("{} sensitivity {:.3f} s, {} allocation {:.3f} s{}\n", report.metric, sens_seconds,
               o->method, alloc_seconds,
               plan.predicted.contains("ilp")
                   ? " (" + plan.predicted["ilp"].get<std::string>() + ")"
                   : "");
    if (!o->out.empty()) fmt::print("wrote {}\n", o->out);
  });
}

}  // namespace mpq::cli
