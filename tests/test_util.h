// Helpers for tests: tiny graphs built in code, temp dirs, the shared data folder, running mpq.
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "mpq/ir/graph.h"

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

}  // namespace mpq::test
