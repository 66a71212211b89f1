// Constant folding: run each node whose inputs are all initializers once, at import, with the
// op's own kernel, and keep the results as initializers. This removes Constant nodes and the
// shape-computing subgraphs PyTorch exports for padding and reshapes (resnet20's option-A
// shortcut, mobilenetv2's SAME padding), so the executor only runs real layers.
#include <c10/core/GradMode.h>

#include "mpq/core/error.h"
#include "mpq/exec/op.h"
#include "mpq/ir/passes.h"

namespace mpq::ir {

int fold_constants(Graph& graph) {
  c10::AutoGradMode no_grad(false);
  std::vector<Node> kept;
  int folded = 0;
  for (Node& node : graph.nodes) {
    bool all_constant = true;
    for (int in : node.inputs) all_constant = all_constant && (in < 0 || graph.is_initializer(in));
    bool is_output = false;
    for (int out : node.outputs)
      for (int g : graph.outputs) is_output = is_output || out == g;
    if (!all_constant || is_output || node.op == "Dropout") {
      kept.push_back(std::move(node));
      continue;
    }
    exec::Tensors in, out(node.outputs.size());
    for (int v : node.inputs) in.push_back(v >= 0 ? graph.initializer(v) : at::Tensor());
    auto def = Registry<exec::OpDef>::create(node.op, "op");
    try {
      def->prepare(exec::PrepareContext{graph, node, false})(in, out);
    } catch (const Error& e) {
      throw Error(e.code(), fmt::format("{}: {}", graph.source, e.what()));
    } catch (const c10::Error& e) {
      std::string what = e.what_without_backtrace();
      fail(ErrorCode::kBadFile, "{}: {} cannot be evaluated on its constant inputs: {}",
           graph.source, node.where(), what.substr(0, what.find('\n')));
    }
    for (size_t k = 0; k < out.size(); ++k)
      graph.set_initializer(node.outputs[k], out[k].contiguous());
    ++folded;
  }
  graph.nodes = std::move(kept);
  graph.topo_sort();
  return folded;
}

}  // namespace mpq::ir
