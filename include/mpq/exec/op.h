// An op definition: how an ONNX op is checked at import and how it runs on ATen.
//
// One file per ONNX op under src/import/onnx/ops/, registered by its ONNX name:
//   MPQ_REGISTER(OpDef, "Relu", Relu);
// check() runs once at import and rejects attributes mpq cannot honour (naming the node);
// prepare() runs once per Executor and returns the kernel, with attributes and constant
// inputs (pads, shapes, clip bounds) already decoded so that running it costs only ATen calls.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <optional>
#include <vector>

#include "mpq/core/registry.h"
#include "mpq/ir/graph.h"

namespace mpq::exec {

using Tensors = std::vector<at::Tensor>;
// Reads the node's inputs (undefined tensors for omitted optional inputs) and fills its outputs.
using Kernel = std::function<void(const Tensors& inputs, Tensors& outputs)>;

struct PrepareContext {
  const ir::Graph& graph;
  const ir::Node& node;
  bool training = false;  // BatchNormalization uses batch statistics and updates running ones

  // The constant (initializer) behind input `index`, if it is one.
  std::optional<at::Tensor> constant(size_t index) const {
    return graph.constant_input(node, index);
  }
  bool has_input(size_t index) const {
    return index < node.inputs.size() && node.inputs[index] >= 0;
  }
};

class OpDef {
 public:
  virtual ~OpDef() = default;
  // Import-time validation; throws mpq::Error naming the node.
  virtual void check(const ir::Node& /*node*/, const ir::Graph& /*graph*/) const {}
  // How many leading inputs the op cannot do without (present and non-empty); the importer
  // rejects a node with fewer, so kernels may read them unchecked.
  virtual int required_inputs() const { return 1; }
  virtual Kernel prepare(const PrepareContext& ctx) const = 0;
};

// True when a kernel may overwrite this input in place: the executor handed it over (this node
// is its last reader), nothing else references its storage, and autograd does not need it.
bool reusable(const at::Tensor& t);
// Reads an integer list from a constant tensor (pads, shapes, axes, ...).
std::vector<int64_t> to_int_vector(const at::Tensor& t);
// The ONNX op types mpq can run, comma-separated (for error messages).
std::string supported_ops();

}  // namespace mpq::exec
