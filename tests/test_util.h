// Helpers for tests: tiny graphs built in code, temp dirs, the shared data folder, running mpq.
#pragma once

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "mpq/core/error.h"
#include "mpq/data/dataset.h"
#include "mpq/exec/executor.h"
#include "mpq/ir/graph.h"
#include "mpq/quant/quant_sim.h"

namespace mpq::test {

// A graph with one input `x` of `shape` (batch dim -1); nodes are added with op().
struct GraphBuilder {
  ir::Graph g;
  explicit GraphBuilder(std::vector<int64_t> shape) {
    int x = g.add_value("x");
    g.values[x].shape = std::move(shape);
    g.inputs.push_back(x);
  }
  int constant(const std::string& name, at::Tensor t) {
    int v = g.add_value(name);
    g.set_initializer(v, t);
    return v;
  }
  int op(const std::string& op, std::vector<int> inputs,
         std::map<std::string, ir::AttrValue> attrs = {}, const std::string& name = "") {
    std::string n = name.empty() ? op + std::to_string(g.nodes.size()) : name;
    int out = g.add_value(n + "_out");
    g.add_node(ir::Node{n, op, std::move(inputs), {out}, std::move(attrs)});
    return out;
  }
  ir::Graph finish(int output) {
    g.outputs = {output};
    g.topo_sort();
    return std::move(g);
  }
};

// Images held in memory (uint8 [N, C, H, W]) with labels: data for unit tests.
class TensorDataset : public data::Dataset {
 public:
  TensorDataset(at::Tensor images, at::Tensor labels)
      : images_(std::move(images)), labels_(std::move(labels)) {}
  // `n` random images of [c, h, w] with random labels below `classes`.
  static TensorDataset random(int64_t n, int64_t c, int64_t h, int64_t w, int64_t classes,
                              uint64_t seed = 0) {
    at::manual_seed(seed);
    return TensorDataset(at::randint(0, 256, {n, c, h, w}, at::kByte),
                         at::randint(0, classes, {n}, at::kLong));
  }
  int64_t size() const override { return images_.size(0); }
  int64_t label(int64_t i) const override { return labels_[i].item<int64_t>(); }
  at::Tensor image(int64_t i) const override { return images_[i]; }
  std::string where(int64_t i) const override { return "image " + std::to_string(i); }
  std::string kind() const override { return "memory"; }

 private:
  at::Tensor images_, labels_;
};

// A loader over all of `dataset`, pixels scaled to [0,1] then (x - 0.5) / 0.25.
inline data::Loader loader_for(const data::Dataset& dataset, int64_t batch = 16) {
  data::DataSpec spec;
  spec.kind = "memory";
  spec.text = "memory";
  std::vector<double> mean(dataset.image(0).size(0), 0.5), std(mean.size(), 0.25);
  return data::Loader(dataset, spec, data::Preprocess{0, 0, mean, std}, batch);
}

// The message of the mpq::Error `f` throws, or "" when it throws none.
// Squared error of the quantized model's outputs against the float model's on inputs `x`.
inline double held_out_error(const quant::QuantSim& sim, const at::Tensor& x) {
  c10::InferenceMode guard;
  at::Tensor q = exec::Executor(sim.frozen()).forward(x);
  at::Tensor f = exec::Executor(sim.float_graph()).forward(x);
  return (q - f).square().sum().item<double>();
}

inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

inline std::filesystem::path temp_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() /
             ("mpq_test_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir;
}

// ../shared/data next to the repo (or $MPQ_DATA), or "" when absent.
inline std::string shared_data() {
  if (const char* env = std::getenv("MPQ_DATA")) return env;
  auto dir = std::filesystem::path(MPQ_SOURCE_DIR).parent_path() / "shared" / "data";
  return std::filesystem::exists(dir / "cifar10" / "resnet20.onnx") ? dir.string() : "";
}

#define MPQ_REQUIRE_SHARED_DATA()                                                           \
  std::string data_dir = ::mpq::test::shared_data();                                        \
  if (data_dir.empty())                                                                     \
  GTEST_SKIP() << "skipped: ../shared/data (real models and data) is not on this machine; " \
                  "CI always has it"

struct CommandResult {
  int status;
  std::string output;  // stdout and stderr together
};

inline CommandResult run_command(const std::string& cmd) {
  std::string full = cmd + " 2>&1";
  FILE* pipe = popen(full.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
  int status = pclose(pipe);
  return {WEXITSTATUS(status), out};
}

// The mpq binary with `args`; and the last JSON object a --json command printed.
inline CommandResult mpq_cli(const std::string& args) {
  return run_command(std::string(MPQ_BINARY) + " " + args);
}
inline nlohmann::json output_json(const CommandResult& r) {
  return nlohmann::json::parse(r.output.substr(r.output.rfind("\n{") + 1));
}

// ONNX Runtime (npm onnxruntime-node, tools/ort) installed by scripts/setup.sh?
inline std::string ort_dir() { return std::string(MPQ_SOURCE_DIR) + "/tools/ort"; }
inline bool has_ort() {
  return std::filesystem::exists(ort_dir() + "/node_modules/onnxruntime-node");
}

// The model's first output for input `x` [N, ...] computed by ONNX Runtime.
inline at::Tensor ort_run(const std::string& model, const at::Tensor& x, int64_t classes) {
  auto dir = temp_dir("ort");
  std::string in = (dir / "in.f32").string(), out = (dir / "out.f32").string();
  at::Tensor c = x.contiguous();
  std::ofstream(in, std::ios::binary).write(static_cast<const char*>(c.data_ptr()), c.nbytes());
  auto r = run_command(fmt::format("node {}/ort.js run {} {} {} {}", ort_dir(), model, in,
                                   fmt::join(c.sizes(), ","), out));
  EXPECT_EQ(r.status, 0) << r.output;
  at::Tensor y = at::zeros({c.size(0), classes}, at::kFloat);
  std::ifstream(out, std::ios::binary).read(static_cast<char*>(y.data_ptr()), y.nbytes());
  return y;
}

}  // namespace mpq::test
