// mpq inspect MODEL: the quantizable layers (name, op, weight shape, params, MACs, BN) and totals.
#include <fmt/format.h>

#include "common.h"
#include "mpq/core/error.h"
#include "mpq/exec/executor.h"

namespace mpq::cli {

void add_inspect(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "per-layer table of a model's quantizable layers");
  auto model = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  cmd->add_option("model", *model, "ONNX model (default: the embedded Fashion-MNIST model)");
  cmd->add_flag("--json", *json, "print one JSON object instead of the table");
  cmd->callback([model, json] {
    ir::Graph graph = load_model(*model);
    auto layers = exec::quantizable_layers(graph);
    int64_t params = 0, macs = 0, bn = 0;
    for (const auto& l : layers) {
      params += l.params;
      macs += l.macs;
      bn += l.has_bn;
    }
    auto shape = exec::input_shape(graph);
    if (*json) {
      nlohmann::json j{{"model", graph.source},
                       {"input_shape", shape},
                       {"nodes", graph.nodes.size()},
                       {"layers", nlohmann::json::array()},
                       {"params", params},
                       {"macs", macs},
                       {"bn_kept", bn}};
      for (const auto& l : layers)
        j["layers"].push_back({{"name", l.name},
                               {"op", l.op},
                               {"weight_shape", l.weight_shape},
                               {"params", l.params},
                               {"macs", l.macs},
                               {"bn", l.has_bn ? "kept" : "folded"}});
      print_json(j);
      return;
    }
    size_t width = 5;
    for (const auto& l : layers) width = std::max(width, l.name.size());
    fmt::print("{}: {} nodes, input {}\n\n", graph.source, graph.nodes.size(),
               fmt::join(shape, "x"));
    fmt::print("{:<{}}  {:<6}  {:<16}  {:>9}  {:>12}  {}\n", "layer", width, "op", "weight",
               "params", "MACs", "BN");
    for (const auto& l : layers)
      fmt::print("{:<{}}  {:<6}  {:<16}  {:>9}  {:>12}  {}\n", l.name, width, l.op,
                 fmt::format("{}", fmt::join(l.weight_shape, "x")), l.params, l.macs,
                 l.has_bn ? "kept" : "folded");
    fmt::print(
        "\n{} quantizable layers, {} weights ({:.1f} KB as float32), {:.2f} M MACs per "
        "image, BN kept after {} of them\n",
        layers.size(), params, params * 4 / 1024.0, macs / 1e6, bn);
  });
}

}  // namespace mpq::cli
