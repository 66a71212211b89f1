// mpq run MODEL.mpq --data SPEC: accuracy with the integer runtime, beside the fake-quant
// simulation of the same file (top-1 of each, argmax agreement).
// mpq bench MODEL.mpq --batch 1,128: latency and throughput, beside ONNX Runtime.
#include <fmt/format.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "common.h"
#include "mpq/core/error.h"
#include "mpq/core/memory.h"
#include "mpq/core/progress.h"
#include "mpq/exec/executor.h"
#include "mpq/export/packed.h"
#include "mpq/ir/passes.h"
#include "mpq/runtime/runtime.h"
#include "runtime_cli.h"

namespace mpq::cli {

runtime::Isa parse_isa(const std::string& name) {
  for (runtime::Isa isa :
       {runtime::Isa::kRef, runtime::Isa::kAvx2, runtime::Isa::kAvx512Vnni, runtime::Isa::kAuto})
    if (name == runtime::isa_name(isa)) return isa;
  fail(ErrorCode::kInvalidArgument, "--isa {}: choose ref, avx2, avx512vnni or auto", name);
}

std::unique_ptr<runtime::Model> load_runtime(const std::string& path, int threads,
                                             runtime::Isa isa) {
  MPQ_CHECK(export_::is_packed_file(path), ErrorCode::kBadFile,
            "{}: not a packed .mpq model; `mpq quantize ... -o NAME` writes NAME.mpq", path);
  std::unique_ptr<runtime::Model> model;
  runtime::Status s = runtime::Model::load(path, {threads, isa}, &model);
  MPQ_CHECK(s.ok(),
            s.code == runtime::StatusCode::kBadFile           ? ErrorCode::kBadFile
            : s.code == runtime::StatusCode::kInvalidArgument ? ErrorCode::kInvalidArgument
                                                              : ErrorCode::kUnsupported,
            "{}", s.message);
  return model;
}

at::Tensor run_runtime(runtime::Model& m, const at::Tensor& images) {
  at::Tensor x = images.to(at::kFloat).contiguous();
  MPQ_CHECK(x.dim() == 4 && x.size(1) == m.channels() && x.size(2) == m.height() &&
                x.size(3) == m.width(),
            ErrorCode::kShapeMismatch, "images are {}; the model takes Nx{}x{}x{}",
            fmt::join(x.sizes(), "x"), m.channels(), m.height(), m.width());
  at::Tensor out = at::empty({x.size(0), m.classes()}, at::kFloat);
  runtime::Status s =
      m.run(x.data_ptr<float>(), static_cast<int>(x.size(0)), out.data_ptr<float>());
  MPQ_CHECK(s.ok(), ErrorCode::kInternal, "{}", s.message);
  return out;
}

namespace {

void add_run(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "run", "accuracy of a packed .mpq model on the integer runtime, beside its simulation");
  struct Opts {
    std::string model;
    DataFlags data;
    int threads = 2;
    std::string isa = "auto";
    bool no_compare = false, json = false;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("model", o->model, "packed model (.mpq, from mpq quantize)")->required();
  o->data.add(*cmd, "evaluation data");
  cmd->add_option("--threads", o->threads, "threads")->check(CLI::PositiveNumber);
  cmd->add_option("--isa", o->isa, "kernels: auto, avx512vnni, avx2 or ref");
  cmd->add_flag("--no-compare", o->no_compare, "skip the fake-quant simulation");
  cmd->add_flag("--json", o->json, "print one JSON object with the results");
  cmd->callback([o] {
    set_quiet(o->json);
    MPQ_CHECK(!o->data.spec.empty(), ErrorCode::kInvalidArgument,
              "--data is required, e.g. --data cifar10:test_1017.bin");
    runtime::Isa isa = parse_isa(o->isa);
    auto rt = load_runtime(o->model, o->threads, isa);
    ir::Graph graph = load_model(o->model);
    Data d = open_data(o->data, graph);
    std::unique_ptr<exec::Executor> sim;
    if (!o->no_compare) {
      ir::fold_batch_norm(graph);
      sim = std::make_unique<exec::Executor>(graph);
    }
    log_line(fmt::format("{}: integer runtime ({} kernels, {} threads), {} KB of packed weights",
                         o->model, runtime::isa_name(rt->isa()), rt->threads(),
                         rt->weight_bytes() / 1024.0));
    c10::InferenceMode inference;
    int64_t correct = 0, correct_sim = 0, agree = 0, images = 0;
    double max_diff = 0, sum_diff = 0, sum_mag = 0;
    double seconds = 0;
    Progress progress("run", d.loader->size(), !o->json);
    for (int64_t b = 0; b < d.loader->batches(); ++b) {
      data::Batch batch = d.loader->batch(b);
      auto t0 = std::chrono::steady_clock::now();
      at::Tensor logits = run_runtime(*rt, batch.images);
      seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      MPQ_CHECK(batch.labels.max().item<int64_t>() < logits.size(1), ErrorCode::kShapeMismatch,
                "{}: a label is out of range for {} classes", d.spec.text, logits.size(1));
      at::Tensor pred = logits.argmax(1);
      correct += pred.eq(batch.labels).sum().item<int64_t>();
      if (sim) {
        at::Tensor ref_logits = sim->forward(batch.images);
        at::Tensor diff = (ref_logits - logits).abs();
        max_diff = std::max(max_diff, diff.max().item<double>());
        sum_diff += diff.sum().item<double>();
        sum_mag += ref_logits.abs().sum().item<double>();
        at::Tensor ref = ref_logits.argmax(1);
        correct_sim += ref.eq(batch.labels).sum().item<int64_t>();
        agree += ref.eq(pred).sum().item<int64_t>();
      }
      images += batch.labels.size(0);
      progress.advance(batch.labels.size(0));
    }
    progress.finish();
    double top1 = 100.0 * correct / images, top1_sim = 100.0 * correct_sim / images;
    double agreement = 100.0 * agree / images;
    if (o->json) {
      nlohmann::json j = {{"model", o->model},
                          {"data", d.spec.text},
                          {"images", images},
                          {"top1", top1},
                          {"isa", runtime::isa_name(rt->isa())},
                          {"threads", rt->threads()},
                          {"images_per_second", images / seconds},
                          {"weight_bytes", rt->weight_bytes()},
                          {"peak_rss_mb", peak_rss_mb()}};
      if (sim) {
        j["top1_simulated"] = top1_sim;
        j["argmax_agreement"] = agreement;
        j["predictions_changed"] = images - agree;
        j["logit_max_abs_difference"] = max_diff;
        j["logit_relative_difference"] = sum_diff / sum_mag;
      }
      print_json(j);
      return;
    }
    fmt::print("integer runtime  top-1 {:.2f}%  on {} images  ({:.0f} images/s, batch {})\n", top1,
               images, images / seconds, o->data.batch);
    if (sim)
      fmt::print(
          "simulation       top-1 {:.2f}%  argmax agreement {:.2f}% ({} predictions "
          "differ); logits differ by {:.3g} at most, by {:.3g} of their size on average\n",
          top1_sim, agreement, images - agree, max_diff, sum_diff / sum_mag);
  });
}

}  // namespace

void add_runtime_commands(CLI::App& app) {
  add_run(app);
  add_bench(app);
  add_latency_table(app);
}

}  // namespace mpq::cli
