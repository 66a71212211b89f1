// mpq eval MODEL --data SPEC: top-1, top-5 and throughput; --predictions FILE keeps what the
// model predicted on every image, for `mpq compare` (paired difference and its bootstrap CI).
#include <fmt/format.h>

#include "common.h"
#include "mpq/core/error.h"
#include "mpq/core/progress.h"
#include "mpq/eval/evaluate.h"
#include "mpq/eval/paired.h"

namespace mpq::cli {

void add_eval(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "top-1 / top-5 accuracy of a model on a data set");
  struct Opts {
    std::string model;
    DataFlags data;
    QuantFlags quant;
    std::string predictions;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("model", o->model, "ONNX model (default: the embedded Fashion-MNIST model)");
  o->data.add(*cmd, "evaluation data (default with no model: the Fashion-MNIST test set)");
  o->quant.add(*cmd);
  cmd->add_option("--predictions", o->predictions,
                  "write every image's label and top-1 class to this JSON file (for mpq compare)");
  cmd->add_flag("--json", o->json, "print one JSON object with the results");
  cmd->callback([o] {
    set_quiet(o->json);
    if (o->data.spec.empty()) {
      MPQ_CHECK(o->model.empty(), ErrorCode::kInvalidArgument,
                "--data is required with a model (e.g. --data cifar10:test_1017.bin)");
      o->data.spec = kFashionTest;
    }
    ir::Graph graph = load_model(o->model);
    std::string plan;
    if (o->quant.given()) {
      // The simulated quantized model: calibrate, round, and evaluate that.
      quant::QuantSim sim = o->quant.quantize(graph, o->model, o->data, !o->json).sim;
      plan = o->quant.plan.empty() ? fmt::format("W{}A{}", o->quant.w_bits, o->quant.a_bits)
                                   : o->quant.plan;
      graph = sim.frozen();
    }
    Data d = open_data(o->data, graph);
    log_line(fmt::format("evaluating {} on {} ({} images, batch {})", graph.source, d.spec.text,
                         d.loader->size(), o->data.batch));
    eval::EvalResult r = eval::evaluate(graph, *d.loader, eval::EvalOptions{!o->json});
    if (!o->predictions.empty()) {
      std::string name = o->model.empty() ? kEmbeddedName : o->model;
      if (!plan.empty()) name += " " + plan;
      eval::save_predictions({name, d.spec.text, r.labels, r.predictions}, o->predictions);
      log_line(fmt::format("wrote {} predictions to {}", r.images, o->predictions));
    }
    if (o->json) {
      print_json({{"model", graph.source},
                  {"data", d.spec.text},
                  {"top1", r.top1},
                  {"top5", r.top5},
                  {"images", r.images},
                  {"seconds", r.seconds},
                  {"images_per_second", r.images_per_second},
                  {"batch", o->data.batch},
                  {"plan", plan},
                  {"predictions", o->predictions}});
      return;
    }
    fmt::print(
        "top-1 {:.2f}%  top-5 {:.2f}%  on {} images  ({:.0f} images/s in the model, "
        "{:.2f} s in all)\n",
        r.top1, r.top5, r.images, r.images_per_second, r.seconds);
  });
}

void add_compare(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "compare",
      "paired top-1 difference of two models on the same images, with its bootstrap 95% CI");
  struct Opts {
    std::string a, b;
    int resamples = 10000;
    uint64_t seed = 0;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("a", o->a, "predictions of model A (mpq eval --predictions)")->required();
  cmd->add_option("b", o->b, "predictions of model B, on the same images in the same order")
      ->required();
  cmd->add_option("--resamples", o->resamples, "bootstrap resamples")->capture_default_str();
  cmd->add_option("--seed", o->seed, "bootstrap seed")->capture_default_str();
  cmd->add_flag("--json", o->json, "print one JSON object with the results");
  cmd->callback([o] {
    eval::Predictions a = eval::load_predictions(o->a), b = eval::load_predictions(o->b);
    eval::PairedDifference d = eval::compare(a, b, o->resamples, o->seed);
    if (o->json) {
      nlohmann::json j = eval::to_json(d);
      j["a"] = a.model;
      j["b"] = b.model;
      j["data"] = a.data;
      print_json(j);
      return;
    }
    fmt::print("A {}: top-1 {:.2f}%\nB {}: top-1 {:.2f}%\n", a.model, d.top1_a, b.model, d.top1_b);
    fmt::print(
        "A − B = {:+.2f} points, 95% CI [{:+.2f}, {:+.2f}] ({} resamples of {} images): {}\n"
        "  {} images only A gets right, {} only B\n",
        d.difference, d.lo, d.hi, d.resamples, d.images, d.verdict(), d.a_only, d.b_only);
  });
}

}  // namespace mpq::cli
