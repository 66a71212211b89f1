// mpq inspect MODEL: the quantizable layers (name, op, weight shape, params, MACs, BN) and totals;
// for a packed .mpq model also its sections and the width and size of every packed tensor.
#include <fmt/format.h>

#include "common.h"
#include "mpq/core/error.h"
#include "mpq/exec/executor.h"
#include "mpq/export/packed.h"

namespace mpq::cli {

void add_inspect(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "per-layer table of a model's quantizable layers");
  auto model = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  cmd->add_option("model", *model, "ONNX model (default: the embedded Fashion-MNIST model)");
  cmd->add_flag("--json", *json, "print one JSON object instead of the table");
  cmd->callback([model, json] {
    ir::Graph graph = load_model(*model);
    nlohmann::json packed;
    if (!model->empty() && export_::is_packed_file(*model)) {
      export_::PackedInfo info = export_::read_packed_info(*model);
      const export_::PackedHeader& h = info.header;
      packed = {{"version", h.version},
                {"file_bytes", info.file_bytes},
                {"header_bytes", h.header_bytes},
                {"graph_bytes", h.graph_bytes},
                {"table_bytes", h.table_bytes},
                {"weights_bytes", h.weights_bytes},
                {"tensors", nlohmann::json::array()}};
      for (const auto& t : info.tensors)
        packed["tensors"].push_back(
            {{"name", t.name}, {"bits", t.bits}, {"shape", t.shape}, {"bytes", t.bytes}});
    }
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
      if (!packed.is_null()) j["packed"] = packed;
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
    if (packed.is_null()) return;
    fmt::print(
        "\npacked model, format version {}: {} bytes = header {} + graph {} + table {} + "
        "weights {}\n",
        packed["version"].get<int>(), packed["file_bytes"].get<int64_t>(),
        packed["header_bytes"].get<int64_t>(), packed["graph_bytes"].get<int64_t>(),
        packed["table_bytes"].get<int64_t>(), packed["weights_bytes"].get<int64_t>());
    size_t name_width = 5;
    for (const auto& t : packed["tensors"])
      name_width = std::max(name_width, t["name"].get<std::string>().size());
    for (const auto& t : packed["tensors"])
      fmt::print("  {:<{}}  {} bits  {:<16}  {:>8} bytes\n", t["name"].get<std::string>(),
                 name_width, t["bits"].get<int>(),
                 fmt::format("{}", fmt::join(t["shape"].get<std::vector<int64_t>>(), "x")),
                 t["bytes"].get<int64_t>());
  });
}

}  // namespace mpq::cli
