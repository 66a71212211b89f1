// The integer runtime's commands: run, bench, latency-table (run.cpp, bench.cpp).
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "mpq/runtime/runtime.h"

namespace at {
class Tensor;
}

namespace mpq::cli {

runtime::Isa parse_isa(const std::string& name);
// Loads a .mpq file into the runtime; failures become mpq::Error with the runtime's message.
std::unique_ptr<runtime::Model> load_runtime(const std::string& path, int threads,
                                             runtime::Isa isa);
// Logits [N, classes] of float NCHW images.
at::Tensor run_runtime(runtime::Model& m, const at::Tensor& images);

// Milliseconds per batch of n random images: warm-up, then runs until `seconds` have passed
// (at least 5). With profiling, the model's step times cover exactly the timed runs.
struct Timing {
  double ms_per_batch = 0;
  double images_per_second = 0;
  int runs = 0;
};
Timing time_runtime(runtime::Model& m, int n, double seconds, bool profile);

void add_bench(CLI::App& app);
void add_latency_table(CLI::App& app);
void add_runtime_commands(CLI::App& app);

}  // namespace mpq::cli
