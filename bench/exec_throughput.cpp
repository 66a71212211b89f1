// Executor throughput on random input: exec_throughput MODEL BATCH SECONDS THREADS -> JSON.
// bench/eval_vs_ort.sh prints it beside ONNX Runtime's figure for the same model.
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "mpq/core/memory.h"
#include "mpq/exec/executor.h"
#include "mpq/import/onnx_importer.h"
#include "mpq/ir/passes.h"

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: exec_throughput MODEL BATCH SECONDS THREADS\n");
    return 2;
  }
  mpq::tune_allocator();
  at::set_num_threads(std::atoi(argv[4]));
  c10::InferenceMode guard;
  mpq::ir::Graph graph = mpq::import::load_onnx(argv[1]);
  // As `mpq eval` runs it: BN folded into the convolutions for inference.
  mpq::ir::fold_batch_norm(graph);
  std::vector<int64_t> shape = mpq::exec::input_shape(graph);
  shape[0] = std::atoll(argv[2]);
  double budget = std::atof(argv[3]);
  mpq::exec::Executor exec(graph);
  at::Tensor x = at::rand(shape);
  for (int i = 0; i < 3; ++i) exec.forward(x);  // warm-up
  bool profile = std::getenv("MPQ_PROFILE") != nullptr;
  exec.set_profiling(profile);
  int runs = 0;
  auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  while (elapsed < budget || runs < 5) {
    exec.forward(x);
    ++runs;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  std::printf(
      "{\"runtime\": \"mpq executor\", \"batch\": %lld, \"runs\": %d, \"seconds\": %.3f, "
      "\"ms_per_batch\": %.4f, \"images_per_second\": %.1f}\n",
      static_cast<long long>(shape[0]), runs, elapsed, 1000 * elapsed / runs,
      shape[0] * runs / elapsed);
  if (profile) {  // the 15 slowest nodes, to stderr
    std::vector<std::pair<double, int>> t;
    for (size_t i = 0; i < graph.nodes.size(); ++i)
      t.push_back({exec.node_seconds()[i], static_cast<int>(i)});
    std::sort(t.rbegin(), t.rend());
    for (size_t k = 0; k < std::min<size_t>(15, t.size()); ++k)
      std::fprintf(stderr, "%8.3f ms  %s\n", 1000 * t[k].first / runs,
                   graph.nodes[t[k].second].where().c_str());
  }
}
