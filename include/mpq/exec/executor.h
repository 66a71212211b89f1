// Runs a Graph on a batch with ATen ops.
//
// Kernels are prepared once (attributes decoded, constant inputs read); a run only walks the
// node list. Intermediate tensors are released after their last reader. Initializers are read
// from the Graph at every run, so weights made autograd leaves (requires_grad_) or replaced
// (fake-quantized) in the Graph are seen, and gradients flow through run().
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "mpq/exec/op.h"
#include "mpq/ir/graph.h"

namespace mpq::exec {

struct ExecOptions {
  bool training = false;  // BatchNormalization in training mode (batch statistics)
  // 4-D float inputs run channels-last (oneDNN's fast layout); double backward (Hessian-vector
  // products) is faster in NCHW, where ATen's convolution double backward has fast kernels.
  bool channels_last = true;
};

class Executor {
 public:
  // `graph` must outlive the Executor.
  explicit Executor(const ir::Graph& graph, ExecOptions options = {});

  // Inputs in graph-input order; returns outputs in graph-output order.
  Tensors run(const Tensors& inputs);
  // Single-input, single-output shorthand.
  at::Tensor forward(const at::Tensor& input);

  // Called with every captured value as soon as it is computed. Capturing keeps nothing alive
  // beyond the call; copy the tensor to keep it.
  using Hook = std::function<void(int value, const at::Tensor& tensor)>;
  void set_hook(std::vector<int> values, Hook hook);
  void clear_hook();

  // Per-node wall time, accumulated over runs while enabled (for bench/ and --profile).
  void set_profiling(bool on);
  const std::vector<double>& node_seconds() const { return node_seconds_; }

 private:
  const ir::Graph& graph_;
  ExecOptions options_;
  std::vector<Kernel> kernels_;
  std::vector<std::vector<int>> release_after_;  // per node: values whose last reader it is
  std::vector<bool> captured_;
  Hook hook_;
  Tensors env_;
  bool profiling_ = false;
  std::vector<double> node_seconds_;
};

// Shapes of every value for one input of `input_shape` (batch dimension included).
std::unordered_map<int, std::vector<int64_t>> infer_shapes(const ir::Graph& graph,
                                                           const std::vector<int64_t>& input_shape);
// The model's input shape for one image ([1, C, H, W]) from the graph's declared input.
std::vector<int64_t> input_shape(const ir::Graph& graph);
// Quantizable layers with params and MACs per image.
std::vector<ir::LayerInfo> quantizable_layers(const ir::Graph& graph);

}  // namespace mpq::exec
