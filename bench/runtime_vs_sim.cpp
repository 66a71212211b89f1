// Where the integer runtime and the fake-quant simulation part, and how far the simulation
// agrees with itself:
//   runtime_vs_sim MODEL.mpq SPEC [imagenet | zooSIZE] [IMAGES]
// (build it first: cmake --build build --target runtime_vs_sim)
// 1. For the first IMAGES (default 3) images: every quantized activation of the runtime against
//    the simulation's, the count that differ and by how many steps (LSB).
// 2. Over the whole SPEC: the simulation at batch 128 against itself one image at a time (float
//    summation order), its argmax agreement and relative logit difference; then the runtime
//    against the simulation at batch 128. "imagenet" selects mobilenetv2's preprocessing,
//    "zoo128" that of a tools/zoo model made at 128 pixels.
#include <c10/core/InferenceMode.h>

#include <cstdio>
#include <map>

#include "mpq/data/dataset.h"
#include "mpq/exec/executor.h"
#include "mpq/export/packed.h"
#include "mpq/ir/passes.h"
#include "mpq/runtime/runtime.h"

using namespace mpq;

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: runtime_vs_sim MODEL.mpq SPEC [imagenet | zooSIZE] [IMAGES]\n");
    return 2;
  }
  c10::InferenceMode guard;
  ir::Graph graph = export_::load_packed(argv[1]);
  ir::fold_batch_norm(graph);
  exec::Executor sim(graph);
  auto spec = data::parse_spec(argv[2]);
  auto ds = data::open_dataset(spec);
  auto pre = data::default_preprocess(ds->kind());
  if (argc > 3 && std::string(argv[3]) == "imagenet") {
    pre.resize = 256, pre.crop = 224;
    pre.mean = {0.5, 0.5, 0.5}, pre.std = {0.5, 0.5, 0.5};
  } else if (argc > 3 && std::string(argv[3]).rfind("zoo", 0) == 0) {  // zooSIZE: tools/zoo
    pre.crop = std::atoi(argv[3] + 3);
    pre.resize = pre.crop * 256 / 224;
    pre.mean = {0.485, 0.456, 0.406}, pre.std = {0.229, 0.224, 0.225};
  }
  const int images = argc > 4 ? std::atoi(argv[4]) : 3;
  std::unique_ptr<runtime::Model> rt;
  runtime::Status st = runtime::Model::load(argv[1], {2, runtime::Isa::kAuto, false}, &rt);
  if (!st.ok()) {
    std::fprintf(stderr, "%s\n", st.message.c_str());
    return 1;
  }
  // 1. Per activation, one image at a time (the runtime keeps tensors for n < 2·threads).
  std::vector<int> ids;
  for (size_t v = 0; v < graph.values.size(); ++v) {
    const std::string& n = graph.values[v].name;
    if (n.size() > 8 && n.compare(n.size() - 8, 8, "input_fq") == 0) ids.push_back(v);
  }
  std::map<int, at::Tensor> seen;
  sim.set_hook(ids, [&](int v, const at::Tensor& t) { seen[v] = t.detach().clone(); });
  data::Loader one(*ds, spec, pre, 1);
  std::map<std::string, std::pair<int64_t, double>> differ;  // count, max LSB
  std::vector<std::string> order;
  for (int b = 0; b < images && b < one.batches(); ++b) {
    at::Tensor x = one.batch(b).images.contiguous();
    sim.forward(x);
    std::vector<float> out(rt->classes());
    rt->run(x.data_ptr<float>(), 1, out.data());
    for (int id : ids) {
      const std::string& name = graph.values[id].name;
      std::vector<double> values;
      std::vector<int> shape;
      if (!runtime::debug_values(*rt, name, &values, &shape)) continue;
      at::Tensor s = seen[id].to(at::kDouble).reshape({-1});
      at::Tensor r =
          at::from_blob(values.data(), {static_cast<int64_t>(values.size())}, at::kDouble);
      at::Tensor u = std::get<0>(at::_unique(s));
      double step = u.numel() > 1 ? (u.slice(0, 1) - u.slice(0, 0, -1)).min().item<double>() : 1;
      at::Tensor d = (s - r).abs() / step;
      if (!differ.count(name)) order.push_back(name);
      auto& e = differ[name];
      e.first += d.gt(0.5).sum().item<int64_t>();
      e.second = std::max(e.second, d.max().item<double>());
    }
  }
  std::printf("activations that differ (runtime vs simulation, %d images):\n", images);
  for (const std::string& name : order)
    std::printf("  %-60s %8lld  max %.0f LSB\n", name.c_str(),
                static_cast<long long>(differ[name].first), differ[name].second);
  sim.clear_hook();
  // 2. Whole set.
  data::Loader batches(*ds, spec, pre, 128);
  int64_t n = 0, self_agree = 0, rt_agree = 0, right_sim = 0, right_single = 0, right_rt = 0;
  double self_diff = 0, rt_diff = 0, mag = 0;
  for (int64_t b = 0; b < batches.batches(); ++b) {
    data::Batch batch = batches.batch(b);
    at::Tensor x = batch.images.contiguous();
    at::Tensor a = sim.forward(x);
    std::vector<at::Tensor> singles;
    for (int64_t i = 0; i < x.size(0); ++i) singles.push_back(sim.forward(x.slice(0, i, i + 1)));
    at::Tensor s1 = at::cat(singles);
    at::Tensor r = at::empty_like(a);
    rt->run(x.data_ptr<float>(), static_cast<int>(x.size(0)), r.data_ptr<float>());
    right_sim += a.argmax(1).eq(batch.labels).sum().item<int64_t>();
    right_single += s1.argmax(1).eq(batch.labels).sum().item<int64_t>();
    right_rt += r.argmax(1).eq(batch.labels).sum().item<int64_t>();
    self_agree += a.argmax(1).eq(s1.argmax(1)).sum().item<int64_t>();
    rt_agree += a.argmax(1).eq(r.argmax(1)).sum().item<int64_t>();
    self_diff += (a - s1).abs().sum().item<double>();
    rt_diff += (a - r).abs().sum().item<double>();
    mag += a.abs().sum().item<double>();
    n += x.size(0);
  }
  std::printf(
      "%lld images: simulation at batch 128 vs one image at a time: argmax agreement "
      "%.2f%%, logits differ by %.2e of their size\n",
      static_cast<long long>(n), 100.0 * self_agree / n, self_diff / mag);
  std::printf(
      "%lld images: integer runtime vs simulation at batch 128:      argmax agreement "
      "%.2f%%, logits differ by %.2e of their size\n",
      static_cast<long long>(n), 100.0 * rt_agree / n, rt_diff / mag);
  std::printf(
      "top-1: simulation at batch 128 %.2f%%, one image at a time %.2f%%, integer runtime "
      "%.2f%%\n",
      100.0 * right_sim / n, 100.0 * right_single / n, 100.0 * right_rt / n);
}
