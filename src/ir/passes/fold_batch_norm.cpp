// BN folding: Conv → BatchNormalization becomes one Conv with scaled weights and a new bias.
// The Conv takes over the BN's output value, so downstream readers are unchanged.
#include "mpq/core/error.h"
#include "mpq/ir/passes.h"

namespace mpq::ir {

int fold_batch_norm(Graph& graph) {
  int folded = 0;
  std::vector<bool> drop(graph.nodes.size(), false);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& conv = graph.nodes[i];
    if (conv.op != "Conv" || !graph.is_initializer(conv.inputs[1])) continue;
    auto readers = graph.consumers(conv.outputs[0]);
    if (readers.size() != 1) continue;
    Node& bn = graph.nodes[readers[0]];
    if (bn.op != "BatchNormalization") continue;
    bool constant = true;
    for (size_t k = 1; k < 5; ++k) constant = constant && graph.is_initializer(bn.inputs[k]);
    bool is_output = false;
    for (int g : graph.outputs) is_output = is_output || g == conv.outputs[0];
    if (!constant || is_output) continue;

    at::Tensor gamma = graph.initializer(bn.inputs[1]).to(at::kDouble);
    at::Tensor beta = graph.initializer(bn.inputs[2]).to(at::kDouble);
    at::Tensor mean = graph.initializer(bn.inputs[3]).to(at::kDouble);
    at::Tensor var = graph.initializer(bn.inputs[4]).to(at::kDouble);
    double eps = bn.attr_float("epsilon", 1e-5);
    at::Tensor scale = gamma / at::sqrt(var + eps);

    const at::Tensor& w = graph.initializer(conv.inputs[1]);
    std::vector<int64_t> view(w.dim(), 1);
    view[0] = -1;
    at::Tensor new_w = (w.to(at::kDouble) * scale.reshape(view)).to(w.scalar_type());
    at::Tensor b = conv.inputs.size() > 2 && conv.inputs[2] >= 0
                       ? graph.initializer(conv.inputs[2]).to(at::kDouble)
                       : at::zeros_like(mean);
    at::Tensor new_b = ((b - mean) * scale + beta).to(w.scalar_type());

    // New values, so that a weight shared with another node is not changed under it.
    int wv = graph.add_value(graph.values[conv.inputs[1]].name + "_bnfolded");
    int bv = graph.add_value(conv.name + ".bias_bnfolded");
    graph.set_initializer(wv, new_w);
    graph.set_initializer(bv, new_b);
    conv.inputs[1] = wv;
    if (conv.inputs.size() > 2)
      conv.inputs[2] = bv;
    else
      conv.inputs.push_back(bv);
    conv.outputs[0] = bn.outputs[0];
    drop[readers[0]] = true;
    ++folded;
  }
  graph.remove_nodes(drop);
  return folded;
}

}  // namespace mpq::ir
