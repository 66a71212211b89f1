// imprint (MSQ: pyramid-pooled weight imprinting). After each quantized layer a task predictor
// without training: the layer's output feature map is average-pooled to 1×1, 2×2 and 4×4,
// concatenated and L2-normalised (a [B, K] output is just normalised); class prototypes are the
// normalised mean embedding of the data's samples of each class; a sample is predicted as the
// prototype of highest cosine similarity. Its accuracy a_l says how much task information the
// features after layer l hold. Importance I_l = max(a_l − a_(l−1), ε) with ε = 0.001 and a_0
// the same predictor on the input image; Ω_l(b) = I_l · ‖ΔW_l(b)‖².
// Labels: the data's ground truth, or (--labels model) the float model's predictions.
// Choices: prototypes and accuracy use the same images (two passes over the data: imprint,
// then predict), so no features are held beyond one batch; the BN-folded model is used (same
// features as with BN kept).
#include <c10/core/InferenceMode.h>

#include "mpq/core/error.h"
#include "mpq/core/progress.h"
#include "mpq/exec/executor.h"
#include "mpq/ir/passes.h"
#include "mpq/sensitivity/metric.h"

namespace mpq::sensitivity {
namespace {

at::Tensor embed(const at::Tensor& x) {
  at::Tensor e;
  if (x.dim() == 4) {
    std::vector<at::Tensor> parts;
    for (int64_t s : {1, 2, 4}) parts.push_back(at::adaptive_avg_pool2d(x, {s, s}).flatten(1));
    e = at::cat(parts, 1);
  } else {
    e = x.flatten(1);
  }
  return e.to(at::kFloat) / e.norm(2, {1}, true).clamp_min(1e-12);
}

class Imprint : public Metric {
 public:
  bool needs_data() const override { return true; }

  Report compute(const Context& ctx) const override {
    c10::InferenceMode guard;
    ir::Graph g = ctx.model;
    ir::fold_batch_norm(g);
    std::vector<ir::LayerInfo> layers = exec::quantizable_layers(g);
    std::vector<int> values;
    for (const ir::LayerInfo& l : layers)
      values.push_back(g.nodes[static_cast<size_t>(l.node)].outputs[0]);
    std::map<int, size_t> slot;  // value -> index in values
    for (size_t i = 0; i < values.size(); ++i) slot[values[i]] = i + 1;  // 0 is the input
    exec::Executor executor(g);
    const data::Loader& data = *ctx.data;
    bool model_labels = ctx.options.labels_from_model;

    // One pass: embeddings of the input and of every layer for a batch, with its labels.
    std::vector<at::Tensor> batch_embeddings(values.size() + 1);
    executor.set_hook(values, [&](int value, const at::Tensor& t) {
      batch_embeddings[slot.at(value)] = embed(t);
    });
    auto run = [&](int64_t b, at::Tensor& labels) {
      data::Batch batch = data.batch(b);
      batch_embeddings[0] = embed(batch.images);
      at::Tensor logits = executor.forward(batch.images);
      labels = model_labels ? logits.argmax(1) : batch.labels;
      return logits.size(1);
    };

    std::vector<at::Tensor> sums;
    int64_t classes = 0;
    Progress imprint("imprint: prototypes", data.size(), ctx.options.progress);
    for (int64_t b = 0; b < data.batches(); ++b) {
      at::Tensor labels;
      classes = run(b, labels);
      MPQ_CHECK(labels.max().item<int64_t>() < classes, ErrorCode::kShapeMismatch,
                "imprint: label {} out of range for {} classes", labels.max().item<int64_t>(),
                classes);
      if (sums.empty())
        for (const at::Tensor& e : batch_embeddings) sums.push_back(at::zeros({classes, e.size(1)}));
      for (size_t i = 0; i < sums.size(); ++i) sums[i].index_add_(0, labels, batch_embeddings[i]);
      imprint.advance(labels.numel());
    }
    imprint.finish();
    std::vector<at::Tensor> prototypes;
    for (const at::Tensor& s : sums) prototypes.push_back(s / s.norm(2, {1}, true).clamp_min(1e-12));

    std::vector<int64_t> correct(sums.size(), 0);
    Progress predict("imprint: accuracy", data.size(), ctx.options.progress);
    for (int64_t b = 0; b < data.batches(); ++b) {
      at::Tensor labels;
      run(b, labels);
      for (size_t i = 0; i < sums.size(); ++i)
        correct[i] +=
            batch_embeddings[i].mm(prototypes[i].t()).argmax(1).eq(labels).sum().item<int64_t>();
      predict.advance(labels.numel());
    }
    predict.finish();

    const double eps = 0.001;
    std::vector<double> accuracy, importance;
    for (int64_t c : correct) accuracy.push_back(static_cast<double>(c) / data.size());
    nlohmann::json profile = nlohmann::json::array();
    for (size_t l = 0; l < layers.size(); ++l) {
      importance.push_back(std::max(accuracy[l + 1] - accuracy[l], eps));
      profile.push_back({{"layer", layers[l].name}, {"accuracy", 100.0 * accuracy[l + 1]}});
    }
    Report r = importance_report(folded_weights(ctx.model), importance, ctx.options);
    r.metric = "imprint";
    r.details["input_accuracy"] = 100.0 * accuracy[0];
    r.details["accuracy_profile"] = profile;
    r.details["labels"] = model_labels ? "model" : "ground truth";
    return r;
  }
};

MPQ_REGISTER(Metric, "imprint", Imprint);

}  // namespace
}  // namespace mpq::sensitivity
