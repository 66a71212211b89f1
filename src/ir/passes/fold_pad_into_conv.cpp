// Pad folding: Pad(x, pads, 0) -> Conv becomes Conv(x) with the pads added to the Conv's own
// (ONNX Conv pads may be asymmetric). Saves a full copy of the activation per padded conv and
// leaves the Conv's input the real activation, which is what a quantizer should observe.
#include "mpq/exec/op.h"
#include "mpq/ir/passes.h"

namespace mpq::ir {
namespace {

// The spatial pads of a foldable Pad node (begins then ends, over dims 2..), or nullopt.
std::optional<std::vector<int64_t>> foldable_pads(const Graph& g, const Node& pad) {
  std::string mode = pad.attr_string("mode", "constant");
  if (!(mode == "constant" || mode.empty())) return std::nullopt;
  std::vector<int64_t> pads;
  if (pad.has("pads"))
    pads = pad.attr_ints("pads");
  else if (auto c = g.constant_input(pad, 1))
    pads = exec::to_int_vector(*c);
  else
    return std::nullopt;
  if (pad.inputs.size() > 3 && pad.inputs[3] >= 0) return std::nullopt;  // axes
  double value = pad.attr_float("value", 0.0);
  if (pad.inputs.size() > 2 && pad.inputs[2] >= 0) {
    auto c = g.constant_input(pad, 2);
    if (!c) return std::nullopt;
    value = c->numel() ? c->item<double>() : 0.0;
  }
  const size_t rank = pads.size() / 2;
  if (value != 0.0 || rank < 3) return std::nullopt;
  for (int64_t p : pads)
    if (p < 0) return std::nullopt;
  if (pads[0] || pads[1] || pads[rank] || pads[rank + 1]) return std::nullopt;  // batch, channels
  std::vector<int64_t> spatial;
  for (size_t i = 2; i < rank; ++i) spatial.push_back(pads[i]);
  for (size_t i = 2; i < rank; ++i) spatial.push_back(pads[rank + i]);
  return spatial;
}

}  // namespace

int fold_pad_into_conv(Graph& graph) {
  int folded = 0;
  std::vector<bool> drop(graph.nodes.size(), false);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const Node& pad = graph.nodes[i];
    if (pad.op != "Pad") continue;
    auto readers = graph.consumers(pad.outputs[0]);
    if (readers.size() != 1) continue;
    Node& conv = graph.nodes[readers[0]];
    if (conv.op != "Conv" || conv.inputs[0] != pad.outputs[0]) continue;
    if (conv.attr_string("auto_pad", "NOTSET") != "NOTSET") continue;
    bool is_output = false;
    for (int g : graph.outputs) is_output = is_output || g == pad.outputs[0];
    auto spatial = foldable_pads(graph, pad);
    if (!spatial || is_output) continue;
    std::vector<int64_t> pads = conv.attr_ints("pads", std::vector<int64_t>(spatial->size(), 0));
    if (pads.size() != spatial->size()) continue;
    for (size_t k = 0; k < pads.size(); ++k) pads[k] += (*spatial)[k];
    conv.attrs["pads"] = pads;
    conv.inputs[0] = pad.inputs[0];
    drop[i] = true;
    ++folded;
  }
  graph.remove_nodes(drop);
  return folded;
}

}  // namespace mpq::ir
