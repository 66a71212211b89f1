// Plain supervised training through mpq's executor: weights become autograd leaves in the
// Graph, BatchNormalization runs in training mode and updates its running statistics in
// place, torch::optim::SGD (momentum, weight decay) with a per-step cosine learning rate.
#include <torch/optim/sgd.h>

#include <chrono>

#include "mpq/core/progress.h"
#include "mpq/eval/evaluate.h"
#include "mpq/exec/executor.h"
#include "mpq/train/train.h"

namespace mpq::train {
namespace {

at::Tensor augment(const at::Tensor& x, at::Generator& gen) {
  // Random shift by up to 2 pixels (pad 2 with the background value, random crop) and a
  // horizontal flip with probability 1/2, per image.
  int64_t n = x.size(0), h = x.size(2), w = x.size(3);
  at::Tensor background = x.amin({1, 2, 3}, true);
  at::Tensor padded = at::constant_pad_nd(x - background, {2, 2, 2, 2}, 0.0) + background;
  at::Tensor out = at::empty_like(x);
  at::Tensor offsets = at::randint(0, 5, {n, 2}, gen, at::kLong);
  at::Tensor flips = at::randint(0, 2, {n}, gen, at::kLong);
  auto o = offsets.accessor<int64_t, 2>();
  auto f = flips.accessor<int64_t, 1>();
  for (int64_t i = 0; i < n; ++i) {
    at::Tensor crop = padded[i].slice(1, o[i][0], o[i][0] + h).slice(2, o[i][1], o[i][1] + w);
    out[i].copy_(f[i] ? crop.flip({2}) : crop);
  }
  return out;
}

}  // namespace

TrainResult train(ir::Graph& graph, const data::Loader& train_data, const data::Loader& test_data,
                  const TrainOptions& options) {
  auto start = std::chrono::steady_clock::now();
  std::vector<at::Tensor> decayed, plain;
  for (const ir::Node& node : graph.nodes) {
    bool bn = node.op == "BatchNormalization";
    if (node.op != "Conv" && node.op != "Gemm" && !bn) continue;
    size_t n_params = bn ? 3 : node.inputs.size();
    for (size_t i = 1; i < n_params; ++i) {
      at::Tensor& t = graph.initializer(node.inputs[i]);
      t.requires_grad_(true);
      (i == 1 && !bn ? decayed : plain).push_back(t);
    }
  }
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(
      decayed, std::make_unique<torch::optim::SGDOptions>(torch::optim::SGDOptions(options.lr)
                                                              .momentum(0.9)
                                                              .weight_decay(options.weight_decay)
                                                              .nesterov(true)));
  groups.emplace_back(plain,
                      std::make_unique<torch::optim::SGDOptions>(
                          torch::optim::SGDOptions(options.lr).momentum(0.9).nesterov(true)));
  torch::optim::SGD sgd(groups, torch::optim::SGDOptions(options.lr));
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(options.seed);

  const int64_t steps_per_epoch = train_data.batches();
  const int64_t total_steps = options.epochs * steps_per_epoch;
  int64_t step = 0;
  exec::Executor executor(graph, exec::ExecOptions{true});
  TrainResult result;
  for (int64_t epoch = 0; epoch < options.epochs; ++epoch) {
    // A different batch order every epoch: a permutation of batch indices.
    at::Tensor order = at::randperm(steps_per_epoch, gen, at::kLong);
    Progress progress(fmt::format("epoch {}/{}", epoch + 1, options.epochs), train_data.size());
    double loss_sum = 0;
    int64_t seen = 0, correct = 0;
    for (int64_t s = 0; s < steps_per_epoch; ++s) {
      double lr = 0.5 * options.lr * (1 + std::cos(M_PI * static_cast<double>(step) / total_steps));
      for (auto& group : sgd.param_groups())
        static_cast<torch::optim::SGDOptions&>(group.options()).lr(lr);
      data::Batch batch = train_data.batch(order[s].item<int64_t>());
      at::Tensor x = options.augment ? augment(batch.images, gen) : batch.images;
      sgd.zero_grad();
      at::Tensor logits = executor.forward(x);
      at::Tensor loss = at::nll_loss(at::log_softmax(logits, 1), batch.labels);
      loss.backward();
      sgd.step();
      ++step;
      loss_sum += loss.item<double>() * x.size(0);
      correct += logits.argmax(1).eq(batch.labels).sum().item<int64_t>();
      seen += x.size(0);
      progress.advance(x.size(0), fmt::format("loss {:.4f} acc {:.2f}%", loss_sum / seen,
                                              100.0 * correct / seen));
    }
    progress.finish();
  }
  for (auto* group : {&decayed, &plain})
    for (auto& t : *group) t.requires_grad_(false);
  eval::EvalResult test = eval::evaluate(graph, test_data, eval::EvalOptions{});
  result.test_top1 = test.top1;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace mpq::train
