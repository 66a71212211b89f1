#include "mpq/exec/executor.h"

#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>

#include <chrono>

#include "mpq/core/error.h"

namespace mpq::exec {

std::vector<int64_t> to_int_vector(const at::Tensor& t) {
  MPQ_CHECK(t.defined(), ErrorCode::kBadFile, "an integer list (pads, axes, a shape) is missing");
  at::Tensor flat = t.to(at::kLong).contiguous().reshape({-1});
  const int64_t* p = flat.data_ptr<int64_t>();
  return std::vector<int64_t>(p, p + flat.numel());
}

std::string supported_ops() {
  // mpq's own ops ("mpq::FakeQuantize") are not ONNX ops a model may contain.
  std::string out;
  for (const std::string& name : Registry<OpDef>::names())
    if (name.find("::") == std::string::npos) out += (out.empty() ? "" : ", ") + name;
  return out;
}

bool reusable(const at::Tensor& t) {
  // Only the kernel's input list holds it, no other tensor shares its storage (a view's base),
  // and autograd does not need it.
  return t.defined() && t.use_count() == 1 && t.storage().use_count() == 1 &&
         !(at::GradMode::is_enabled() && t.requires_grad());
}
Executor::Executor(const ir::Graph& graph, ExecOptions options) : graph_(graph), options_(options) {
  kernels_.reserve(graph.nodes.size());
  for (const ir::Node& node : graph.nodes) {
    MPQ_CHECK(Registry<OpDef>::contains(node.op), ErrorCode::kUnsupported,
              "{}: unsupported op '{}' in {}; supported: {}", graph.source, node.op, node.where(),
              supported_ops());
    auto def = Registry<OpDef>::create(node.op, "op");
    kernels_.push_back(def->prepare(PrepareContext{graph, node, options.training}));
  }
  // Last reader of each value: release it there (unless it is a graph output).
  std::vector<int> last_use(graph.values.size(), -1);
  for (size_t i = 0; i < graph.nodes.size(); ++i)
    for (int in : graph.nodes[i].inputs)
      if (in >= 0 && !graph.is_initializer(in)) last_use[in] = static_cast<int>(i);
  for (int out : graph.outputs) last_use[out] = -1;
  release_after_.assign(graph.nodes.size(), {});
  for (size_t v = 0; v < last_use.size(); ++v)
    if (last_use[v] >= 0) release_after_[last_use[v]].push_back(static_cast<int>(v));
  captured_.assign(graph.values.size(), false);
}

void Executor::set_hook(std::vector<int> values, Hook hook) {
  captured_.assign(graph_.values.size(), false);
  for (int v : values) captured_.at(v) = true;
  hook_ = std::move(hook);
}

void Executor::set_profiling(bool on) {
  profiling_ = on;
  node_seconds_.assign(graph_.nodes.size(), 0.0);
}

void Executor::clear_hook() {
  captured_.assign(graph_.values.size(), false);
  hook_ = nullptr;
}

Tensors Executor::run(const Tensors& inputs) {
  MPQ_CHECK(inputs.size() == graph_.inputs.size(), ErrorCode::kInvalidArgument,
            "{}: the model takes {} input(s), got {}", graph_.source, graph_.inputs.size(),
            inputs.size());
  env_.assign(graph_.values.size(), at::Tensor());
  for (const auto& [v, t] : graph_.initializers()) env_[v] = t;
  for (size_t i = 0; i < inputs.size(); ++i) {
    // Images run channels-last: oneDNN's fast layout for convolutions on CPU.
    const at::Tensor& x = inputs[i];
    env_[graph_.inputs[i]] = options_.channels_last && x.dim() == 4 && x.scalar_type() == at::kFloat
                                 ? x.contiguous(at::MemoryFormat::ChannelsLast)
                                 : x;
    if (hook_ && captured_[graph_.inputs[i]]) hook_(graph_.inputs[i], inputs[i]);
  }
  Tensors in, out;
  for (size_t i = 0; i < graph_.nodes.size(); ++i) {
    const ir::Node& node = graph_.nodes[i];
    in.clear();
    for (int v : node.inputs) in.push_back(v >= 0 ? env_[v] : at::Tensor());
    // Inputs this node reads last are handed over, so a kernel holding the only reference
    // may overwrite them (see reusable()).
    for (int v : release_after_[i]) env_[v].reset();
    out.assign(node.outputs.size(), at::Tensor());
    auto t0 =
        profiling_ ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
    try {
      kernels_[i](in, out);
    } catch (const c10::Error& e) {
      std::string what = e.what_without_backtrace();
      std::string shapes;
      for (const auto& t : in)
        shapes += (shapes.empty() ? "" : ", ") +
                  (t.defined() ? fmt::format("{}", fmt::join(t.sizes(), "x")) : std::string("-"));
      fail(ErrorCode::kShapeMismatch, "{}: {} failed on inputs [{}]: {}", graph_.source,
           node.where(), shapes, what.substr(0, what.find('\n')));
    }
    if (profiling_)
      node_seconds_[i] +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (size_t k = 0; k < node.outputs.size(); ++k) {
      env_[node.outputs[k]] = std::move(out[k]);
      if (hook_ && captured_[node.outputs[k]]) hook_(node.outputs[k], env_[node.outputs[k]]);
    }
  }
  Tensors result;
  for (int v : graph_.outputs) result.push_back(env_[v]);
  env_.clear();
  return result;
}

at::Tensor Executor::forward(const at::Tensor& input) { return run({input}).at(0); }

std::unordered_map<int, std::vector<int64_t>> infer_shapes(const ir::Graph& graph,
                                                           const std::vector<int64_t>& shape) {
  c10::AutoGradMode no_grad(false);
  Executor exec(graph);
  std::vector<int> all(graph.values.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
  std::unordered_map<int, std::vector<int64_t>> shapes;
  exec.set_hook(all, [&](int v, const at::Tensor& t) { shapes[v] = t.sizes().vec(); });
  exec.run({at::zeros(shape)});
  return shapes;
}

std::vector<int64_t> input_shape(const ir::Graph& graph) {
  MPQ_CHECK(!graph.inputs.empty(), ErrorCode::kBadFile, "{}: the model has no input", graph.source);
  std::vector<int64_t> shape = graph.values[graph.inputs[0]].shape;
  MPQ_CHECK(!shape.empty(), ErrorCode::kUnsupported,
            "{}: input '{}' has no declared shape; re-export with a static input shape",
            graph.source, graph.values[graph.inputs[0]].name);
  shape[0] = 1;
  for (size_t i = 1; i < shape.size(); ++i)
    MPQ_CHECK(shape[i] > 0, ErrorCode::kUnsupported,
              "{}: input '{}' dimension {} is dynamic; only the batch dimension may be",
              graph.source, graph.values[graph.inputs[0]].name, i);
  return shape;
}

std::vector<ir::LayerInfo> quantizable_layers(const ir::Graph& graph) {
  return ir::describe_layers(graph, infer_shapes(graph, input_shape(graph)));
}

}  // namespace mpq::exec
