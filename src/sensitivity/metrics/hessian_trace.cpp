// hessian_trace (HAWQ-V2/V3): Tr(H_l)/n_l by Hutchinson's method. For Rademacher probes v (one
// block v_l per layer), Hv comes from a double backward through the executor, and
// E[v_lᵀ(Hv)_l] = Tr(H_ll) since the cross terms vanish in expectation, so one Hessian-vector
// product serves every layer. Samples are added until the running mean of every layer's trace
// moves less than 1e-3 (relative; --hutchinson-tolerance) or 50 samples (--samples).
// Ω_l(b) = Tr(H_l)/n_l · ‖ΔW_l(b)‖².
// Choices: the loss is the mean cross-entropy over all the data given (use @256 for HAWQ's
// setting); the first-order graph of every batch is built once and reused by every probe, so a
// probe costs one double backward per batch; negative traces (a non-convex point) are clamped
// to a small positive value so the ILP stays meaningful.
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/InferenceMode.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>

#include "mpq/core/progress.h"
#include "mpq/exec/executor.h"
#include "mpq/ir/passes.h"
#include "mpq/sensitivity/metric.h"

namespace mpq::sensitivity {
namespace {

class HessianTrace : public Metric {
 public:
  bool needs_data() const override { return true; }

  Report compute(const Context& ctx) const override {
    ir::Graph g = ctx.model;
    ir::fold_batch_norm(g);
    std::vector<ir::LayerInfo> layers = exec::quantizable_layers(g);
    std::vector<at::Tensor> params;
    for (const ir::LayerInfo& l : layers) {
      at::Tensor& w = g.initializer(g.nodes[static_cast<size_t>(l.node)].inputs[1]);
      w = w.detach().clone().requires_grad_(true);
      params.push_back(w);
    }
    exec::ExecOptions exec_options;
    exec_options.channels_last = false;  // NCHW double backward: 0.9 vs 1.1 s per probe here
    exec::Executor executor(g, exec_options);
    const data::Loader& data = *ctx.data;
    // First-order gradients of every batch with their graphs kept for the double backward.
    std::vector<std::vector<at::Tensor>> grads;
    double total = static_cast<double>(data.size());
    Progress prep("hessian: gradients", data.size(), ctx.options.progress);
    for (int64_t b = 0; b < data.batches(); ++b) {
      data::Batch batch = data.batch(b);
      at::Tensor logits = executor.forward(batch.images);
      at::Tensor loss = at::cross_entropy_loss(logits, batch.labels) *
                        (static_cast<double>(batch.labels.numel()) / total);
      grads.push_back(torch::autograd::grad({loss}, params, {}, true, true));
      prep.advance(batch.labels.numel());
    }
    prep.finish();

    int max_samples = std::max(1, ctx.options.hutchinson_samples);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(ctx.options.seed);
    std::vector<double> sum(params.size(), 0.0), mean(params.size(), 0.0);
    nlohmann::json history = nlohmann::json::array();
    Progress bar("hessian: probes", max_samples, ctx.options.progress);
    int samples = 0;
    for (int s = 0; s < max_samples; ++s) {
      std::vector<at::Tensor> v;
      for (const at::Tensor& p : params)
        v.push_back(at::randint(0, 2, p.sizes(), gen, p.options().requires_grad(false)) * 2 - 1);
      std::vector<double> estimate(params.size(), 0.0);
      for (const auto& g_batch : grads) {
        at::Tensor gv = at::zeros({}, at::kFloat);
        for (size_t l = 0; l < params.size(); ++l) gv = gv + (g_batch[l] * v[l]).sum();
        auto hv = torch::autograd::grad({gv}, params, {}, true, false);
        for (size_t l = 0; l < params.size(); ++l)
          estimate[l] += (hv[l] * v[l]).sum().item<double>();
      }
      ++samples;
      double change = 0;
      for (size_t l = 0; l < params.size(); ++l) {
        sum[l] += estimate[l];
        double next = sum[l] / samples;
        if (samples > 1)
          change = std::max(change, std::abs(next - mean[l]) / std::max(std::abs(next), 1e-12));
        mean[l] = next;
      }
      history.push_back(
          {{"samples", samples}, {"max_relative_change", samples > 1 ? change : 1.0}});
      bar.advance(1, fmt::format("max change {:.2e}", samples > 1 ? change : 1.0));
      if (samples > 1 && change < ctx.options.hutchinson_tolerance) break;
    }
    bar.finish(fmt::format("{} probes", samples));

    std::vector<double> per_weight;
    nlohmann::json traces = nlohmann::json::array();
    for (size_t l = 0; l < params.size(); ++l) {
      double n = static_cast<double>(layers[l].params);
      per_weight.push_back(std::max(mean[l], 1e-12 * n) / n);
      traces.push_back({{"layer", layers[l].name}, {"trace", mean[l]}});
    }
    LayerWeights w = folded_weights(ctx.model);
    Report r = importance_report(w, per_weight, ctx.options);
    r.metric = "hessian_trace";
    r.details["samples"] = samples;
    r.details["images"] = data.size();
    r.details["convergence"] = history;
    r.details["trace"] = traces;
    return r;
  }
};

MPQ_REGISTER(Metric, "hessian_trace", HessianTrace);

}  // namespace
}  // namespace mpq::sensitivity
