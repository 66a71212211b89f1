// Top-1 of uniformly quantized models, nearest rounding, for every pair of weight observer
// (max, mse) and activation observer (minmax, percentile, mse), in one process: calibration
// statistics are collected once and the evaluation images decoded once.
//   quant_table MODEL CALIB_SPEC EVAL_SPEC W8A8,W4A4,... [imagenet]
// `imagenet`: --resize 256 --crop 224 --mean/--std 0.5 (the shared MobileNetV2); otherwise the
// data kind's defaults. bench/quant_table.sh runs it on the shared models.
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <sstream>

#include "mpq/core/memory.h"
#include "mpq/core/progress.h"
#include "mpq/exec/executor.h"
#include "mpq/import/onnx_importer.h"
#include "mpq/ptq/rounding.h"
#include "mpq/quant/quant_sim.h"

using namespace mpq;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

double top1(const ir::Graph& g, const std::vector<data::Batch>& batches) {
  exec::Executor e(g);
  int64_t correct = 0, n = 0;
  for (const data::Batch& b : batches) {
    correct += e.forward(b.images).argmax(1).eq(b.labels).sum().item<int64_t>();
    n += b.labels.numel();
  }
  return 100.0 * correct / static_cast<double>(n);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr,
                 "usage: quant_table MODEL CALIB_SPEC EVAL_SPEC W8A8,W4A4,... [imagenet]\n");
    return 2;
  }
  tune_allocator();
  at::set_num_threads(static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)));
  c10::InferenceMode guard;
  set_quiet(true);
  ir::Graph model = import::load_onnx(argv[1]);
  auto calib_spec = data::parse_spec(argv[2]);
  auto eval_spec = data::parse_spec(argv[3]);
  data::Preprocess pre = data::default_preprocess(calib_spec.kind);
  if (argc > 5 && std::string(argv[5]) == "imagenet")
    pre = data::Preprocess{256, 224, {0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}};
  auto calib_ds = data::open_dataset(calib_spec);
  data::Loader calib(*calib_ds, calib_spec, pre, 64);
  auto eval_ds = data::open_dataset(eval_spec);
  data::Loader eval(*eval_ds, eval_spec, pre, 64);
  std::vector<data::Batch> batches;
  for (int64_t b = 0; b < eval.batches(); ++b) batches.push_back(eval.batch(b));

  std::vector<std::pair<int, int>> plans;
  std::stringstream list(argv[4]);
  for (std::string item; std::getline(list, item, ',');) {
    int w = 0, a = 0;
    if (std::sscanf(item.c_str(), "W%dA%d", &w, &a) != 2) {
      std::fprintf(stderr, "bad plan '%s' (want WxAy)\n", item.c_str());
      return 2;
    }
    plans.emplace_back(w, a);
  }
  auto layers = exec::quantizable_layers(model);
  auto start = std::chrono::steady_clock::now();
  quant::QuantSim first(model, allocation::uniform_plan(layers, 8, 8));
  quant::CalibrationStats stats = first.collect(calib, false);
  double float_top1 = top1(first.float_graph(), batches);
  fmt::print(
      "{}: top-1 (%) on {} ({} images), float {:.2f}; calibration on {} ({} images, {:.0f} s)\n",
      argv[1], eval_spec.text, eval.size(), float_top1, calib_spec.text, calib.size(),
      seconds_since(start));
  const char* act[] = {"minmax", "percentile", "mse"};
  fmt::print("{:<6}", "W obs:");
  for (const char* w : {"max", "mse"})
    for (int k = 0; k < 3; ++k) fmt::print(" {:>10}", w);
  fmt::print("\n{:<6}", "A obs:");
  for (int v = 0; v < 2; ++v)
    for (const char* a : act) fmt::print(" {:>10}", a);
  fmt::print(" {:>9}\n", "s/cell");
  for (auto [w, a] : plans) {
    fmt::print("{:<6}", fmt::format("W{}A{}", w, a));
    std::fflush(stdout);
    auto t = std::chrono::steady_clock::now();
    quant::QuantSim sim(model, allocation::uniform_plan(layers, w, a));
    for (bool weight_mse : {false, true})
      for (const char* o : act) {
        quant::CalibrationOptions opts;
        opts.observer = o;
        opts.weight_mse = weight_mse;
        opts.progress = false;
        sim.calibrate(stats, opts);
        ptq::make_rounding("nearest")->apply(sim, calib, {});
        fmt::print(" {:>10.2f}", top1(sim.frozen(), batches));
        std::fflush(stdout);
      }
    fmt::print(" {:>9.1f}\n", seconds_since(t) / 6);
  }
  return 0;
}
