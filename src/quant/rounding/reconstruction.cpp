#include "mpq/quant/reconstruction.h"

#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/InferenceMode.h>
#include <torch/csrc/autograd/autograd.h>

#include <chrono>

#include "mpq/core/error.h"
#include "mpq/core/progress.h"
#include "mpq/exec/executor.h"
#include "mpq/ptq/block_reconstruction.h"

namespace mpq::quant {
namespace {

// A graph of the single layer node: input "x", its weight (and bias) as initializers.
struct LayerGraph {
  ir::Graph graph;
  int weight = -1;
};

LayerGraph single_layer(const ir::Graph& sim, const std::string& name, const at::Tensor& weight) {
  const ir::Node* node = nullptr;
  for (const ir::Node& n : sim.nodes)
    if (n.name == name) node = &n;
  MPQ_CHECK(node, ErrorCode::kInternal, "layer '{}' not in the simulation graph", name);
  LayerGraph lg;
  ir::Graph& g = lg.graph;
  int x = g.add_value("x");
  g.inputs = {x};
  ir::Node copy = *node;
  copy.inputs[0] = x;
  lg.weight = g.add_value("w");
  g.set_initializer(lg.weight, weight.clone());
  copy.inputs[1] = lg.weight;
  for (size_t i = 2; i < node->inputs.size(); ++i) {
    if (node->inputs[i] < 0) continue;
    int v = g.add_value("in" + std::to_string(i));
    g.set_initializer(v, sim.initializer(node->inputs[i]).clone());
    copy.inputs[i] = v;
  }
  int y = g.add_value("y");
  copy.outputs = {y};
  g.outputs = {y};
  g.add_node(copy);
  g.topo_sort();
  return lg;
}


}  // namespace

nlohmann::json reconstruct_layers(QuantSim& sim, const data::Loader& calib,
                                  const ReconstructionOptions& options,
                                  const SoftRoundingFactory& make, const std::string& label) {
  MPQ_CHECK(calib.size() > 0, ErrorCode::kInvalidArgument,
            "{} needs calibration images: the calibration set is empty", label);
  nlohmann::json report = nlohmann::json::array();
  auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
  for (size_t i = 0; i < sim.layers().size(); ++i) {
    const QuantLayer& l = sim.layers()[i];
    if (!l.quantizes_weight()) continue;
    // Cache the layer's input in the quantized model and its output in the float model.
    const ir::Node* qnode = nullptr;
    for (const ir::Node& n : sim.graph().nodes)
      if (n.name == l.info.name) qnode = &n;
    int q_in = qnode->inputs[0];
    int f_out = sim.float_graph().nodes[static_cast<size_t>(l.info.node)].outputs[0];
    std::vector<at::Tensor> xs, ys;
    {
      c10::InferenceMode guard;
      ir::Graph frozen = sim.frozen();
      exec::Executor qe(frozen), fe(sim.float_graph());
      qe.set_hook({q_in}, [&](int, const at::Tensor& t) { xs.push_back(t.contiguous().clone()); });
      fe.set_hook({f_out}, [&](int, const at::Tensor& t) { ys.push_back(t.contiguous().clone()); });
      for (int64_t b = 0; b < calib.batches(); ++b) {
        data::Batch batch = calib.batch(b);
        qe.forward(batch.images);
        fe.forward(batch.images);
      }
    }
    // The inputs/outputs were captured in inference mode; copy them out of it for autograd.
    at::Tensor x, y;
    {
      c10::InferenceMode guard(false);
      x = at::cat(xs).clone();
      y = at::cat(ys).clone();
    }
    xs.clear();
    ys.clear();

    // Calibration ran in inference mode; autograd needs normal tensors (clones).
    at::Tensor scale = along(sim.weight_scale(i).clone(), l.axis, sim.float_weight(i).dim());
    at::Tensor w_over_s = sim.float_weight(i).clone() / scale;
    IntRange range = weight_range(l.w_bits);
    std::unique_ptr<SoftRounding> rounding = make();
    at::Tensor v = rounding->init(w_over_s, range).detach().requires_grad_(true);
    LayerGraph lg = single_layer(sim.graph(), l.info.name, sim.float_weight(i));
    exec::ExecOptions eo;
    eo.channels_last = false;
    exec::Executor layer(lg.graph, eo);

    auto loss_of = [&](const at::Tensor& w_int, const at::Tensor& xb, const at::Tensor& yb) {
      lg.graph.initializer(lg.weight) = w_int * scale;
      at::Tensor out = layer.forward(xb);
      return (out - yb).square().flatten(1).sum(1).mean();
    };
    double before = 0;
    {
      at::NoGradGuard no_grad;
      before = loss_of(sim.nearest_integers(i).to(at::kFloat), x, y).item<double>();
    }
    Adam adam(v, options.lr);
    Progress bar(fmt::format("{} {}/{} {}", label, i + 1, sim.layers().size(), l.info.name),
                 options.iters, options.progress);
    double last = before;
    for (int64_t it = 0; it < options.iters; ++it) {
      double t = static_cast<double>(it) / static_cast<double>(options.iters);
      at::Tensor idx = at::randint(x.size(0), {std::min(options.batch, x.size(0))}, gen, at::kLong);
      at::Tensor rec =
          loss_of(rounding->soft(v, t), x.index_select(0, idx), y.index_select(0, idx));
      at::Tensor loss = rec + rounding->regularizer(v, t);
      at::Tensor grad = torch::autograd::grad({loss}, {v})[0];
      {
        at::NoGradGuard no_grad;
        adam.step(v, grad);
      }
      last = rec.item<double>();
      bar.advance(1, fmt::format("loss {:.4g} (nearest {:.4g})", last, before));
    }
    bar.finish();
    at::Tensor q;
    double after = 0;
    {
      at::NoGradGuard no_grad;
      q = rounding->hard(v.detach());
      after = loss_of(q.to(at::kFloat), x, y).item<double>();
    }
    sim.set_weight_integers(i, q);
    report.push_back({{"layer", l.info.name}, {"nearest_loss", before}, {"loss", after}});
  }
  return report;
}

nlohmann::json reconstruct(QuantSim& sim, const data::Loader& calib, const RoundingOptions& options,
                           ReconstructionOptions r, const SoftRoundingFactory& make,
                           const std::string& label) {
  if (options.iters > 0) r.iters = options.iters;
  r.progress = options.progress;
  r.qdrop = options.qdrop;
  MPQ_CHECK(options.qdrop >= 0 && options.qdrop < 1, ErrorCode::kInvalidArgument,
            "--qdrop {}: a probability in [0, 1)", options.qdrop);
  if (options.granularity == "block") return ptq::reconstruct_blocks(sim, calib, r, make, label);
  MPQ_CHECK(options.granularity == "layer", ErrorCode::kInvalidArgument,
            "--granularity {}: use layer or block", options.granularity);
  MPQ_CHECK(options.qdrop == 0, ErrorCode::kInvalidArgument,
            "--qdrop {} needs --granularity block (layer-wise reconstruction has no activations "
            "to drop)", options.qdrop);
  return reconstruct_layers(sim, calib, r, make, label);
}

}  // namespace mpq::quant
