// mpq eval MODEL --data SPEC: top-1, top-5 and throughput.
#include <fmt/format.h>

#include "common.h"
#include "mpq/core/error.h"
#include "mpq/core/progress.h"
#include "mpq/eval/evaluate.h"

namespace mpq::cli {

void add_eval(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "top-1 / top-5 accuracy of a model on a data set");
  struct Opts {
    std::string model;
    DataFlags data;
    QuantFlags quant;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("model", o->model, "ONNX model (default: the embedded Fashion-MNIST model)");
  o->data.add(*cmd, "evaluation data (default with no model: the Fashion-MNIST test set)");
  o->quant.add(*cmd);
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
      quant::QuantSim sim = o->quant.build(graph, o->model, o->data, !o->json);
      plan = o->quant.plan.empty() ? fmt::format("W{}A{}", o->quant.w_bits, o->quant.a_bits)
                                   : o->quant.plan;
      graph = sim.frozen();
    }
    Data d = open_data(o->data, graph);
    log_line(fmt::format("evaluating {} on {} ({} images, batch {})", graph.source, d.spec.text,
                         d.loader->size(), o->data.batch));
    eval::EvalResult r = eval::evaluate(graph, *d.loader, eval::EvalOptions{!o->json});
    if (o->json) {
      print_json({{"model", graph.source},
                  {"data", d.spec.text},
                  {"top1", r.top1},
                  {"top5", r.top5},
                  {"images", r.images},
                  {"seconds", r.seconds},
                  {"images_per_second", r.images_per_second},
                  {"batch", o->data.batch},
                  {"plan", plan}});
      return;
    }
    fmt::print(
        "top-1 {:.2f}%  top-5 {:.2f}%  on {} images  ({:.0f} images/s in the model, "
        "{:.2f} s in all)\n",
        r.top1, r.top5, r.images, r.images_per_second, r.seconds);
  });
}

}  // namespace mpq::cli
