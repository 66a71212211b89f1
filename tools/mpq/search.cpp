// mpq search MODEL --metric NAME --budget KIND=VALUE ... -o plan.json: sensitivity, then bit
// allocation under every budget given (ILP, the proportional rule, or a Pareto sweep). The plan
// feeds `mpq quantize --plan`.
#include <fmt/format.h>

#include <chrono>

#include "common.h"
#include "mpq/allocation/allocator.h"
#include "mpq/core/error.h"
#include "mpq/core/file.h"
#include "mpq/core/progress.h"

namespace mpq::cli {

void add_search(CLI::App& app) {
  auto* cmd = app.add_subcommand("search", "find per-layer bit-widths under budgets");
  struct Opts {
    std::string model, out, report, allocator = "ilp", latency_table;
    std::vector<std::string> budgets;
    int a_bits = 8;
    std::vector<int> a_candidates;
    int first_last_bits = 8;
    int points = 8;
    DataFlags data;
    SensitivityFlags flags;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("model", o->model, "ONNX model (default: the embedded Fashion-MNIST model)");
  o->flags.add(*cmd);
  o->data.add(*cmd, "data for the metrics that need it");
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
  cmd->add_option("--allocator", o->allocator, "ilp, proportional, or pareto (a sweep)")
      ->check(CLI::IsMember({"ilp", "proportional", "pareto"}))
      ->capture_default_str();
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

    auto start = std::chrono::steady_clock::now();
    sensitivity::Report report = o->report.empty()
                                     ? o->flags.run(model, o->model, o->data, !o->json)
                                     : sensitivity::load_report(o->report);
    double sens_seconds = o->report.empty() ? report.seconds : 0.0;
    allocation::Problem p = make_problem(
        report, costs, budgets,
        o->a_candidates.empty() ? std::vector<int>{o->a_bits} : o->a_candidates,
        o->first_last_bits);

    auto t = std::chrono::steady_clock::now();
    if (o->allocator == "pareto") {
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
    allocation::BitPlan plan = allocation::allocate(o->allocator, p);
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
    fmt::print(
        "\npredicted: size {}, {:.4g} GBOPs, energy {}, average weight width {:.3f} bits{}\n",
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
    fmt::print("{} sensitivity {:.3f} s, {} allocation {:.3f} s{}\n", report.metric, sens_seconds,
               o->allocator, alloc_seconds,
               plan.predicted.contains("ilp")
                   ? " (" + plan.predicted["ilp"].get<std::string>() + ")"
                   : "");
    if (!o->out.empty()) fmt::print("wrote {}\n", o->out);
  });
}

}  // namespace mpq::cli
