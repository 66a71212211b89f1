#include "mpq/eval/evaluate.h"

#include <c10/core/GradMode.h>

#include <chrono>

#include "mpq/core/error.h"
#include "mpq/core/progress.h"
#include "mpq/exec/executor.h"
#include "mpq/ir/passes.h"

namespace mpq::eval {

void check_image_shape(const ir::Graph& graph, at::IntArrayRef got, const std::string& data_where) {
  const ir::Value& input = graph.values[graph.inputs[0]];
  bool ok = input.shape.empty() || input.shape.size() == got.size() + 1;
  for (size_t i = 1; ok && i < input.shape.size(); ++i)
    ok = input.shape[i] < 0 || input.shape[i] == got[i - 1];
  if (ok) return;
  std::vector<std::string> want;
  for (size_t i = 1; i < input.shape.size(); ++i)
    want.push_back(input.shape[i] < 0 ? "?" : std::to_string(input.shape[i]));
  fail(ErrorCode::kShapeMismatch,
       "{}: images are {} but model input '{}' of {} expects {}; check --resize/--crop and that "
       "the data suits this model",
       data_where, fmt::join(got, "x"), input.name, graph.source, fmt::join(want, "x"));
}

void check_data_fits(const ir::Graph& graph, const data::Dataset& dataset,
                     const data::Loader& loader, const data::Preprocess& preprocess,
                     const std::string& data_where) {
  MPQ_CHECK(!loader.order().empty(), ErrorCode::kInvalidArgument,
            "{}: the data set is empty (no images selected)", data_where);
  at::Tensor first = dataset.image(loader.order().at(0));
  if (preprocess.resize > 0 || preprocess.crop > 0)
    first = data::resize_and_crop(first, preprocess);
  check_image_shape(graph, first.sizes(), data_where);
}

void check_batch(const ir::Graph& graph, const data::Batch& batch, int64_t classes,
                 const std::string& data_where) {
  check_image_shape(graph, batch.images.sizes().slice(1), data_where);
  if (classes > 0 && batch.labels.numel() > 0) {
    int64_t max_label = batch.labels.max().item<int64_t>();
    MPQ_CHECK(max_label < classes, ErrorCode::kShapeMismatch,
              "{}: label {} is out of range for a model with {} output classes ({})", data_where,
              max_label, classes, graph.source);
  }
}

EvalResult evaluate(const ir::Graph& graph, const data::Loader& loader,
                    const EvalOptions& options) {
  c10::InferenceMode inference;
  // Inference only needs the outputs: run a copy with BN folded into the convolutions (the
  // caller's graph keeps its BN nodes; initializers are shared, not copied).
  ir::Graph folded = graph;
  ir::fold_batch_norm(folded);
  exec::Executor executor(folded);
  EvalResult r;
  int64_t correct1 = 0, correct5 = 0;
  std::vector<at::Tensor> predictions, labels, logits_all;
  Progress progress("eval", loader.size(), options.progress);
  auto start = std::chrono::steady_clock::now();
  for (int64_t b = 0; b < loader.batches(); ++b) {
    data::Batch batch = loader.batch(b);
    if (b == 0) check_image_shape(graph, batch.images.sizes().slice(1), "data");
    auto t0 = std::chrono::steady_clock::now();
    at::Tensor logits = executor.forward(batch.images);
    r.model_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    MPQ_CHECK(logits.dim() == 2, ErrorCode::kShapeMismatch,
              "{}: output has shape {}; evaluation expects [batch, classes] logits", graph.source,
              fmt::join(logits.sizes(), "x"));
    check_batch(graph, batch, logits.size(1), "data");
    int64_t k = std::min<int64_t>(5, logits.size(1));
    at::Tensor top = std::get<1>(logits.topk(k, 1));
    at::Tensor hit = top.eq(batch.labels.unsqueeze(1));
    correct1 += hit.select(1, 0).sum().item<int64_t>();
    correct5 += hit.any(1).sum().item<int64_t>();
    predictions.push_back(top.select(1, 0).clone());
    labels.push_back(batch.labels.to(at::kLong).clone());
    if (options.keep_logits) logits_all.push_back(logits.clone());
    r.images += batch.images.size(0);
    progress.advance(
        batch.images.size(0),
        fmt::format("top-1 {:.2f}%", 100.0 * correct1 / static_cast<double>(r.images)));
  }
  progress.finish();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.top1 = 100.0 * correct1 / static_cast<double>(r.images);
  r.top5 = 100.0 * correct5 / static_cast<double>(r.images);
  r.images_per_second = r.images / std::max(r.model_seconds, 1e-9);
  r.predictions = at::cat(predictions);
  r.labels = at::cat(labels);
  if (options.keep_logits) r.logits = at::cat(logits_all);
  return r;
}

}  // namespace mpq::eval
