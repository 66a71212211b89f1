// Top-1 of the bit plans every sensitivity metric gives through the ILP, at average-weight-bit
// budgets, against uniform and random (several seeds), all quantized the same way (mse ranges,
// nearest rounding, first and last layers at 8 bits), plus the cost of each metric.
//   allocation_table MODEL CALIB EVAL[,EVAL2] BUDGETS A_BITS METRICS [imagenet]
//     BUDGETS   average weight bits, e.g. 2.5,3,4
//     A_BITS    activation widths, e.g. 4,8
//     METRICS   e.g. bn_scale,hessian_trace,imprint,coding_length,output_mse,uniform,random:3
//               (random:N = N seeds; hessian_trace@K:S = K images and S probes;
//               coding_length/proportional = that allocator instead of the ILP)
// bench/allocation_table.sh runs it on the shared models.
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <sstream>

#include "mpq/allocation/allocator.h"
#include "mpq/core/memory.h"
#include "mpq/core/progress.h"
#include "mpq/exec/executor.h"
#include "mpq/import/onnx_importer.h"
#include "mpq/ptq/rounding.h"
#include "mpq/quant/quant_sim.h"

using namespace mpq;

namespace {

std::vector<std::string> split(const std::string& s, char sep = ',') {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, sep);) out.push_back(item);
  return out;
}

struct EvalSet {
  std::string name;
  std::vector<data::Batch> batches;
};

double top1(const ir::Graph& g, const EvalSet& set) {
  c10::InferenceMode guard;
  exec::Executor e(g);
  int64_t correct = 0, n = 0;
  for (const data::Batch& b : set.batches) {
    correct += e.forward(b.images).argmax(1).eq(b.labels).sum().item<int64_t>();
    n += b.labels.numel();
  }
  return 100.0 * correct / static_cast<double>(n);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 7) {
    std::fprintf(stderr,
                 "usage: allocation_table MODEL CALIB EVAL[,EVAL2] BUDGETS A_BITS METRICS "
                 "[imagenet]\n");
    return 2;
  }
  tune_allocator();
  at::set_num_threads(static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)));
  set_quiet(true);
  ir::Graph model = import::load_onnx(argv[1]);
  bool imagenet = argc > 7 && std::string(argv[7]) == "imagenet";
  auto pre_for = [&](const std::string& kind) {
    return imagenet ? data::Preprocess{256, 224, {0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}}
                    : data::default_preprocess(kind);
  };
  auto calib_spec = data::parse_spec(argv[2]);
  auto calib_ds = data::open_dataset(calib_spec);
  data::Loader calib(*calib_ds, calib_spec, pre_for(calib_spec.kind), 64);
  std::vector<EvalSet> sets;
  std::vector<std::unique_ptr<data::Dataset>> keep;
  for (const std::string& spec_text : split(argv[3])) {
    auto spec = data::parse_spec(spec_text);
    keep.push_back(data::open_dataset(spec));
    data::Loader loader(*keep.back(), spec, pre_for(spec.kind), 128);
    EvalSet set{spec.paths[0].substr(spec.paths[0].rfind('/') + 1), {}};
    for (int64_t b = 0; b < loader.batches(); ++b) set.batches.push_back(loader.batch(b));
    sets.push_back(std::move(set));
  }
  std::vector<double> budgets;
  for (const auto& b : split(argv[4])) budgets.push_back(std::stod(b));
  std::vector<int> a_bits;
  for (const auto& a : split(argv[5])) a_bits.push_back(std::stoi(a));

  // Sensitivity reports, timed.
  std::vector<sensitivity::Report> reports;
  std::vector<std::string> labels, allocators;
  fmt::print("{}\nsensitivity cost:\n", argv[1]);
  for (std::string item : split(argv[6])) {
    std::string allocator = "ilp";
    if (auto slash = item.find('/'); slash != std::string::npos) {
      allocator = item.substr(slash + 1);
      item = item.substr(0, slash);
    }
    std::string name = item.substr(0, item.find_first_of(":@"));
    int seeds = 1;
    sensitivity::Options opts;
    opts.progress = false;
    opts.fallback = "output_mse";
    int64_t images = name == "imprint" ? 1024 : 256;
    if (auto at = item.find('@'); at != std::string::npos) {
      auto parts = split(item.substr(at + 1), ':');
      images = std::stoll(parts[0]);
      if (parts.size() > 1) opts.hutchinson_samples = std::stoi(parts[1]);
    } else if (auto colon = item.find(':'); colon != std::string::npos) {
      seeds = std::stoi(item.substr(colon + 1));
    }
    auto spec = calib_spec;
    spec.count = std::min<int64_t>(images, calib_ds->size());
    spec.seed = -1;
    data::Loader data(*calib_ds, spec, pre_for(spec.kind), name == "hessian_trace" ? 128 : 64);
    for (int s = 0; s < seeds; ++s) {
      opts.seed = static_cast<uint64_t>(s);
      sensitivity::Context ctx{model, &data, opts};
      sensitivity::Report r = sensitivity::compute(name, ctx);
      std::string label = seeds > 1 ? fmt::format("{}({})", name, s) : name;
      if (r.details.contains("fallback_from")) label = name + "->" + r.metric;
      if (allocator != "ilp") label += "/" + allocator;
      std::string extra;
      if (r.details.contains("samples"))
        extra = fmt::format(" ({} probes on {} images)", r.details["samples"].get<int>(),
                            r.details["images"].get<int64_t>());
      else if (Registry<sensitivity::Metric>::create(r.metric, "m")->needs_data())
        extra = fmt::format(" ({} images)", data.size());
      fmt::print("  {:<24} {:>10.4f} s{}\n", label, r.seconds, extra);
      std::fflush(stdout);
      reports.push_back(std::move(r));
      labels.push_back(label);
      allocators.push_back(allocator);
    }
  }

  // Calibration statistics once; every plan is quantized the same way.
  auto layers = exec::quantizable_layers(model);
  quant::QuantSim base(model, allocation::uniform_plan(layers, 8, 8));
  quant::CalibrationStats stats = base.collect(calib, false);
  allocation::CostModel costs(model);
  fmt::print("\nfloat top-1:");
  for (const EvalSet& set : sets) fmt::print(" {} {:.2f}", set.name, top1(base.float_graph(), set));
  fmt::print("\ntop-1 (%) of the plan per metric (ILP unless /allocator); columns: activation bits / average weight bits "
             "budget; cells: {}\n", sets.size() > 1 ? sets[0].name + " / " + sets[1].name : sets[0].name);
  fmt::print("{:<24}", "metric");
  for (int a : a_bits)
    for (double b : budgets) fmt::print(" {:>15}", fmt::format("A{} W{}", a, b));
  fmt::print("\n");
  std::vector<std::vector<std::vector<double>>> results;  // [metric][column][set]
  for (size_t m = 0; m < reports.size(); ++m) {
    fmt::print("{:<24}", labels[m]);
    std::fflush(stdout);
    std::vector<std::vector<double>> row;
    for (int a : a_bits)
      for (double b : budgets) {
        allocation::Problem p;
        p.sensitivity = &reports[m];
        p.costs = &costs;
        p.w_candidates = reports[m].bits;
        p.a_candidates = {a};
        p.budgets = {allocation::parse_budget(fmt::format("avg-w-bits={}", b))};
        allocation::BitPlan plan = allocation::allocate(allocators[m], p);
        quant::QuantSim sim(model, plan);
        quant::CalibrationOptions opts;
        opts.progress = false;
        sim.calibrate(stats, opts);
        ptq::make_rounding("nearest")->apply(sim, calib, {});
        ir::Graph frozen = sim.frozen();
        std::vector<double> cell;
        for (const EvalSet& set : sets) cell.push_back(top1(frozen, set));
        fmt::print(" {:>15}", sets.size() > 1 ? fmt::format("{:.2f}/{:.2f}", cell[0], cell[1])
                                              : fmt::format("{:.2f}", cell[0]));
        std::fflush(stdout);
        row.push_back(cell);
      }
    fmt::print("\n");
    results.push_back(row);
  }
  // Mean of the random seeds, and which metrics beat it.
  std::vector<size_t> random_rows;
  for (size_t m = 0; m < labels.size(); ++m)
    if (labels[m].rfind("random", 0) == 0) random_rows.push_back(m);
  if (!random_rows.empty()) {
    fmt::print("{:<24}", "random (mean)");
    std::vector<std::vector<double>> mean(results[0].size(), std::vector<double>(sets.size(), 0));
    for (size_t c = 0; c < mean.size(); ++c)
      for (size_t s = 0; s < sets.size(); ++s) {
        for (size_t m : random_rows) mean[c][s] += results[m][c][s] / random_rows.size();
      }
    for (const auto& cell : mean)
      fmt::print(" {:>15}", sets.size() > 1 ? fmt::format("{:.2f}/{:.2f}", cell[0], cell[1])
                                            : fmt::format("{:.2f}", cell[0]));
    fmt::print("\nbeats the random mean at <= 3 bits (every such column, every set):\n");
    for (size_t m = 0; m < labels.size(); ++m) {
      if (labels[m].rfind("random", 0) == 0) continue;
      int wins = 0, total = 0;
      size_t c = 0;
      for (size_t ai = 0; ai < a_bits.size(); ++ai)
        for (double b : budgets) {
          if (b <= 3)
            for (size_t s = 0; s < sets.size(); ++s) {
              ++total;
              wins += results[m][c][s] > mean[c][s];
            }
          ++c;
        }
      fmt::print("  {:<24} {}/{}\n", labels[m], wins, total);
    }
  }
  return 0;
}
