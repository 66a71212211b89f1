#include "mpq/quant/quant_sim.h"

#include <c10/core/InferenceMode.h>

#include <set>

#include "mpq/core/error.h"
#include "mpq/core/progress.h"
#include "mpq/exec/executor.h"
#include "mpq/ir/passes.h"

namespace mpq::quant {
namespace {

ir::Node fake_quantize(const std::string& name, std::vector<int> inputs, int output, IntRange range,
                       int64_t axis) {
  ir::Node n;
  n.name = name;
  n.op = "mpq::FakeQuantize";
  n.inputs = std::move(inputs);
  n.outputs = {output};
  n.attrs["qmin"] = range.qmin;
  n.attrs["qmax"] = range.qmax;
  n.attrs["axis"] = axis;
  return n;
}

}  // namespace

QuantSim::QuantSim(const ir::Graph& model, const allocation::BitPlan& plan,
                   const std::string& plan_source, WeightGrid grid)
    : float_(model), plan_(plan), grid_(grid) {
  ir::fold_batch_norm(float_);
  std::vector<ir::LayerInfo> infos = exec::quantizable_layers(float_);
  MPQ_CHECK(!infos.empty(), ErrorCode::kUnsupported,
            "{}: has no Conv or Gemm/MatMul layer with constant weights to quantize", model.source);
  allocation::check_plan(plan_, infos, plan_source);
  if (plan_.model.empty()) plan_.model = model.source;
  graph_ = float_;
  std::vector<ir::Node> added;
  for (const ir::LayerInfo& info : infos) {
    const allocation::LayerBits& bits = *plan_.find(info.name);
    ir::Node& node = graph_.nodes[static_cast<size_t>(info.node)];
    QuantLayer q;
    q.info = info;
    q.w_bits = bits.w_bits;
    q.a_bits = bits.a_bits;
    q.w_grid = grid;
    q.axis = weight_axis(node.op, node.attr_int("transB", 0) != 0);
    q.weight = node.inputs[1];
    q.input = node.inputs[0];
    at::Tensor w = graph_.initializer(q.weight);
    if (node.op == "Conv" && !node.has("kernel_shape"))
      node.attrs["kernel_shape"] = w.sizes().slice(2).vec();
    if (q.quantizes_weight()) {
      int64_t channels = w.size(q.axis);
      q.weight_scale = graph_.add_value(info.name + ".weight_scale");
      q.weight_zero = graph_.add_value(info.name + ".weight_zero_point");
      graph_.set_initializer(q.weight_scale, at::ones({channels}, at::kFloat));
      graph_.set_initializer(q.weight_zero, at::zeros({channels}, at::kInt));
      int out = graph_.add_value(info.name + ".weight_fq");
      added.push_back(fake_quantize(info.name + ".weight_quant",
                                    {q.weight, q.weight_scale, q.weight_zero}, out,
                                    q.weight_range(), q.axis));
      node.inputs[1] = out;
    }
    if (q.quantizes_input()) {
      q.input_scale = graph_.add_value(info.name + ".input_scale");
      q.input_zero = graph_.add_value(info.name + ".input_zero_point");
      graph_.set_initializer(q.input_scale, at::ones({1}, at::kFloat));
      graph_.set_initializer(q.input_zero, at::zeros({1}, at::kInt));
      int out = graph_.add_value(info.name + ".input_fq");
      added.push_back(fake_quantize(info.name + ".input_quant",
                                    {q.input, q.input_scale, q.input_zero}, out,
                                    activation_range(q.a_bits), -1));
      node.inputs[0] = out;
    }
    float_weights_.push_back(w);
    layers_.push_back(q);
  }
  for (ir::Node& n : added) graph_.add_node(std::move(n));
  graph_.topo_sort();
}

CalibrationStats QuantSim::collect(const data::Loader& calib, bool progress) const {
  MPQ_CHECK(calib.size() > 0, ErrorCode::kInvalidArgument,
            "the calibration set is empty; give --calib a data set with images");
  c10::InferenceMode inference;
  std::set<int> wanted;
  for (const QuantLayer& l : layers_)
    if (l.quantizes_input()) wanted.insert(l.input);
  CalibrationStats stats;
  for (int v : wanted) stats[v];
  exec::Executor executor(float_);
  int64_t batch_index = 0;
  int64_t take = ActivationStats::kSampleSize / calib.batches();
  executor.set_hook(
      std::vector<int>(wanted.begin(), wanted.end()), [&](int value, const at::Tensor& t) {
        stats[value].observe(t, static_cast<uint64_t>(batch_index * 7919 + value), take);
      });
  bool input_wanted = false;
  for (int in : float_.inputs) input_wanted = input_wanted || wanted.count(in) > 0;
  Progress bar("calibrate", calib.size(), progress);
  for (int64_t b = 0; b < calib.batches(); ++b, ++batch_index) {
    data::Batch batch = calib.batch(b);
    // The hook sees computed values; a graph input read directly by a layer is observed here.
    if (input_wanted) stats[float_.inputs[0]].observe(batch.images, batch_index * 7919, take);
    executor.forward(batch.images);
    bar.advance(batch.images.size(0));
  }
  bar.finish();
  return stats;
}

void QuantSim::calibrate(const CalibrationStats& stats, const CalibrationOptions& options) {
  auto observer = make_observer(options.observer);
  c10::InferenceMode inference;
  for (size_t i = 0; i < layers_.size(); ++i) {
    QuantLayer& l = layers_[i];
    if (l.quantizes_input()) {
      auto it = stats.find(l.input);
      MPQ_CHECK(it != stats.end() && it->second.count > 0, ErrorCode::kInternal,
                "layer '{}': no calibration statistics for its input", l.info.name);
      auto [lo, hi] = observer->range(it->second, l.a_bits, options.observer_options);
      if (it->second.non_negative()) lo = 0;
      l.encoding = activation_encoding(lo, hi, l.a_bits);
      graph_.initializer(l.input_scale) =
          at::full({1}, static_cast<float>(l.encoding.scale), at::kFloat);
      graph_.initializer(l.input_zero) =
          at::full({1}, l.encoding.zero_point, at::TensorOptions().dtype(at::kInt));
    }
    graph_.initializer(l.weight) = float_weights_[i];
    if (l.quantizes_weight())
      graph_.initializer(l.weight_scale) =
          weight_scales(float_weights_[i], l.axis, l.w_bits, l.w_grid, options.weight_mse);
  }
}

void QuantSim::calibrate(const data::Loader& calib, const CalibrationOptions& options) {
  calibrate(collect(calib, options.progress), options);
}

at::Tensor QuantSim::nearest_integers(size_t i) const {
  const QuantLayer& l = layers_.at(i);
  return quantize_weight(float_weights_[i], weight_scale(i), l.axis, l.weight_range());
}

void QuantSim::set_weight_integers(size_t i, const at::Tensor& q) {
  QuantLayer& l = layers_.at(i);
  MPQ_CHECK(l.quantizes_weight(), ErrorCode::kInternal, "layer '{}' keeps float weights",
            l.info.name);
  IntRange r = l.weight_range();
  MPQ_CHECK(q.sizes() == float_weights_[i].sizes() && q.min().item<int64_t>() >= r.qmin &&
                q.max().item<int64_t>() <= r.qmax,
            ErrorCode::kInternal, "layer '{}': integer weights off the {}-bit grid", l.info.name,
            l.w_bits);
  at::Tensor w = dequantize_weight(q, weight_scale(i), l.axis);
  l.weight_mse = (w - float_weights_[i]).square().mean().item<double>();
  graph_.initializer(l.weight) = w;
}

at::Tensor QuantSim::weight_integers(size_t i) const {
  const QuantLayer& l = layers_.at(i);
  return quantize_weight(graph_.initializer(l.weight), weight_scale(i), l.axis, l.weight_range());
}

ir::Graph QuantSim::frozen() const {
  c10::InferenceMode inference;
  ir::Graph g = graph_;
  ir::fold_constants(g);
  return g;
}

}  // namespace mpq::quant
