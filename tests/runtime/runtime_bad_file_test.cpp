// Crafted and damaged .mpq files: every one is a one-line Status from load() or run(), never a
// crash or an exception (issue 19). Each case is a kind of finding the fuzzer
// (tests/fuzz/mpq_file_fuzz.cpp) once made: a graph changed inside a correct file.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <functional>

#include "fuzz/fuzz_util.h"
#include "mpq/export/packed.h"
#include "mpq/export/quantized.h"
#include "mpq/ptq/rounding.h"
#include "mpq/quant/quant_sim.h"
#include "mpq/runtime/runtime.h"
#include "test_util.h"

namespace mpq {
namespace {

using Ints = std::vector<int64_t>;

// A small network with a residual Add, a strided Slice and a Gemm, as a .mpq file's bytes.
std::string small_mpq() {
  at::manual_seed(3);
  test::GraphBuilder b({-1, 3, 8, 8});
  auto conv = [&](int x, int64_t in, int64_t out, const std::string& name) {
    int w = b.constant(name + ".w", at::randn({out, in, 3, 3}) * 0.3);
    return b.op("Conv", {x, w}, {{"pads", Ints{1, 1, 1, 1}}}, name);
  };
  int x = b.op("Relu", {conv(b.g.inputs[0], 3, 4, "stem")}, {}, "stem.relu");
  int sum = b.op("Add", {conv(x, 4, 4, "conv"), x}, {}, "add");
  int starts = b.constant("starts", at::tensor({0}, at::kLong));
  int ends = b.constant("ends", at::tensor({1000}, at::kLong));
  int axes = b.constant("axes", at::tensor({2}, at::kLong));
  int steps = b.constant("steps", at::tensor({2}, at::kLong));
  int sliced = b.op("Slice", {sum, starts, ends, axes, steps}, {}, "slice");
  int pooled = b.op("GlobalAveragePool", {sliced}, {}, "pool");
  int flat = b.op("Flatten", {pooled}, {{"axis", int64_t{1}}}, "flatten");
  int w = b.constant("fc.w", at::randn({3, 4}));
  ir::Graph g = b.finish(b.op("Gemm", {flat, w}, {{"transB", int64_t{1}}}, "fc"));
  auto ds = test::TensorDataset::random(16, 3, 8, 8, 3, 1);
  data::Loader loader = test::loader_for(ds, 16);
  quant::QuantSim sim(g, allocation::uniform_plan(exec::quantizable_layers(g), 4, 8, 8));
  sim.calibrate(loader, quant::CalibrationOptions{"minmax", {}, false, false});
  ptq::make_rounding("nearest")->apply(sim, loader, {});
  std::string path = (test::temp_dir("runtime_bad_file") / "small.mpq").string();
  export_::save_packed(export_::export_quantized(sim), sim, path);
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

onnx::NodeProto* node_of(onnx::ModelProto& m, const std::string& op, int skip = 0) {
  for (auto& n : *m.mutable_graph()->mutable_node())
    if (n.op_type() == op && skip-- == 0) return &n;
  ADD_FAILURE() << "no " << op << " node";
  return nullptr;
}

// Loads `bytes` with its graph changed by `edit`, runs it if it loads, and returns the status.
runtime::Status load_edited(const std::string& bytes,
                            const std::function<void(onnx::ModelProto&)>& edit,
                            const std::string& name) {
  fuzz::MpqParts parts;
  EXPECT_TRUE(fuzz::split_mpq(bytes, &parts));
  onnx::ModelProto m;
  EXPECT_TRUE(m.ParseFromString(parts.graph));
  edit(m);
  m.SerializeToString(&parts.graph);
  std::string path = (test::temp_dir("runtime_bad_file") / (name + ".mpq")).string();
  std::ofstream(path, std::ios::binary) << fuzz::join_mpq(parts);
  std::unique_ptr<runtime::Model> model;
  runtime::Status s = runtime::Model::load(path, {1, runtime::Isa::kRef}, &model);
  if (s.ok()) {
    std::vector<float> in(3 * 8 * 8, 0.5f), out(model->classes());
    s = model->run(in.data(), 1, out.data());
  }
  EXPECT_EQ(s.message.find('\n'), std::string::npos) << s.message;
  if (!s.ok() && s.message.rfind("run:", 0) != 0) {  // load's errors name the file
    EXPECT_NE(s.message.find(name + ".mpq"), std::string::npos) << s.message;
  }
  return s;
}

TEST(IntegerRuntimeBadFiles, EveryCraftedGraphIsAOneLineStatus) {
  const std::string bytes = small_mpq();
  std::unique_ptr<runtime::Model> m;
  {  // The untouched file loads and runs.
    std::string path = (test::temp_dir("runtime_bad_file") / "small.mpq").string();
    ASSERT_TRUE(runtime::Model::load(path, {1, runtime::Isa::kRef}, &m).ok());
  }
  struct Case {
    std::string name, expect;
    std::function<void(onnx::ModelProto&)> edit;
  };
  const std::vector<Case> cases = {
      // A value the lowering never produced (an input dropped): was a null dereference.
      {"add_one_input", "input 1 is missing",
       [](onnx::ModelProto& m) { node_of(m, "Add")->mutable_input()->RemoveLast(); }},
      {"add_empty_input", "input 1 is missing",
       [](onnx::ModelProto& m) { node_of(m, "Add")->set_input(1, ""); }},
      {"conv_no_weight", "input 1 is missing",
       [](onnx::ModelProto& m) { node_of(m, "Conv")->mutable_input()->RemoveLast(); }},
      {"slice_no_ends", "input 2 is missing",
       [](onnx::ModelProto& m) {
         auto* n = node_of(m, "Slice");
         while (n->input_size() > 2) n->mutable_input()->RemoveLast();
       }},
      {"node_no_output", "has no output",
       [](onnx::ModelProto& m) { node_of(m, "Relu")->clear_output(); }},
      // A dimension the element count cannot hold: was std::length_error out of load().
      {"negative_dims", "cannot read",
       [](onnx::ModelProto& m) {
         for (auto& t : *m.mutable_graph()->mutable_initializer())
           if (t.dims_size() == 1) t.set_dims(0, -5);
       }},
      {"huge_dims", "cannot read",
       [](onnx::ModelProto& m) {
         for (auto& t : *m.mutable_graph()->mutable_initializer())
           if (t.dims_size() == 1) t.set_dims(0, int64_t{1} << 62);
       }},
      // Arity and attribute sizes read unchecked: pads[0..3] of a 2-value list.
      {"conv_two_pads", "pads must have",
       [](onnx::ModelProto& m) {
         for (auto& a : *node_of(m, "Conv")->mutable_attribute())
           if (a.name() == "pads") a.mutable_ints()->Truncate(2);
       }},
      {"conv_groups_do_not_divide", "the groups must divide both",
       [](onnx::ModelProto& m) {
         auto* a = node_of(m, "Conv")->add_attribute();
         a->set_name("group");
         a->set_type(onnx::AttributeProto::INT);
         a->set_i(5);
       }},
      {"conv_zero_stride", "stride 0",
       [](onnx::ModelProto& m) {
         auto* a = node_of(m, "Conv")->add_attribute();
         a->set_name("strides");
         a->set_type(onnx::AttributeProto::INTS);
         a->add_ints(0), a->add_ints(0);
       }},
      // A packed weight reached through a Cast: was packed_.at() throwing out of load().
      {"cast_packed_weight", "",
       [](onnx::ModelProto& m) {
         onnx::NodeProto* dq = node_of(m, "DequantizeLinear");
         onnx::NodeProto cast;
         cast.set_name("cast");
         cast.set_op_type("Cast");
         cast.add_input(dq->input(0));
         cast.add_output("cast_out");
         dq->set_input(0, "cast_out");
         auto* nodes = m.mutable_graph()->mutable_node();
         *nodes->Add() = cast;
         for (int i = nodes->size() - 1; i > 0; --i) nodes->SwapElements(i, i - 1);
       }},
      {"unknown_op", "does not implement",
       [](onnx::ModelProto& m) { node_of(m, "Relu")->set_op_type("LpPool"); }},
      {"concat_without_an_axis", "only channel concatenation",
       [](onnx::ModelProto& m) { node_of(m, "Add")->set_op_type("Concat"); }},
      {"max_pool_without_a_kernel", "only 2-D pooling",
       [](onnx::ModelProto& m) { node_of(m, "Relu")->set_op_type("MaxPool"); }},
      // Padding that count_include_pad = 0 leaves out: border windows of fewer values.
      {"average_pool_uncounted_pads", "count_include_pad",
       [](onnx::ModelProto& m) {
         onnx::NodeProto* n = node_of(m, "Relu");
         n->set_op_type("AveragePool");
         for (auto [name, v] : {std::pair{"kernel_shape", 3}, {"pads", 1}}) {
           auto* a = n->add_attribute();
           a->set_name(name);
           a->set_type(onnx::AttributeProto::INTS);
           for (int i = 0; i < (v == 3 ? 2 : 4); ++i) a->add_ints(v);
         }
       }},
      {"transpose_not_a_shuffle", "only the channel shuffle",
       [](onnx::ModelProto& m) { node_of(m, "Relu")->set_op_type("Transpose"); }},
      {"mul_of_a_weight", "Mul of feature maps is supported for real-valued tensors only",
       [](onnx::ModelProto& m) { node_of(m, "Conv")->set_op_type("Mul"); }},
      {"sub_of_maps", "Sub of feature maps is not supported",
       [](onnx::ModelProto& m) { node_of(m, "Add")->set_op_type("Sub"); }},
      {"gather_from_a_map", "only gathers from constants",
       [](onnx::ModelProto& m) { node_of(m, "Add")->set_op_type("Gather"); }},
      {"batch_norm_without_statistics", "BatchNormalization needs 5",
       [](onnx::ModelProto& m) { node_of(m, "Relu")->set_op_type("BatchNormalization"); }},
      {"input_too_wide", "dimension 3",
       [](onnx::ModelProto& m) {
         m.mutable_graph()
             ->mutable_input(0)
             ->mutable_type()
             ->mutable_tensor_type()
             ->mutable_shape()
             ->mutable_dim(3)
             ->set_dim_value(int64_t{1} << 40);
       }},
  };
  for (const Case& c : cases) {
    runtime::Status s = load_edited(bytes, c.edit, c.name);
    if (c.expect.empty()) {  // may load (the Cast passes the weight through) or not; no crash
      std::printf("%s: %s\n", c.name.c_str(), s.ok() ? "loads and runs" : s.message.c_str());
      continue;
    }
    EXPECT_FALSE(s.ok()) << c.name;
    EXPECT_NE(s.message.find(c.expect), std::string::npos) << c.name << ": " << s.message;
  }
}

TEST(IntegerRuntimeBadFiles, ADeviceIsNotReadAsAModel) {
  std::unique_ptr<runtime::Model> m;
  runtime::Status s = runtime::Model::load("/dev/zero", {}, &m);  // would be read forever
  EXPECT_EQ(s.code, runtime::StatusCode::kBadFile);
  EXPECT_EQ(s.message, "/dev/zero: is not a regular file, expected a .mpq model");
}

TEST(IntegerRuntimeBadFiles, OutOfMemoryIsAStatusNotAWriteThroughNull) {
  // In a child process whose address space is capped, a model whose activations do not fit
  // returns kOutOfMemory from run() (it used to write through the null buffer and say Ok).
  const std::string bytes = small_mpq();
  const std::string path = (test::temp_dir("runtime_bad_file") / "wide.mpq").string();
  fuzz::MpqParts parts;
  ASSERT_TRUE(fuzz::split_mpq(bytes, &parts));
  onnx::ModelProto model;
  ASSERT_TRUE(model.ParseFromString(parts.graph));
  auto* shape = model.mutable_graph()
                    ->mutable_input(0)
                    ->mutable_type()
                    ->mutable_tensor_type()
                    ->mutable_shape();
  shape->mutable_dim(2)->set_dim_value(4096), shape->mutable_dim(3)->set_dim_value(4096);
  model.SerializeToString(&parts.graph);
  std::ofstream(path, std::ios::binary) << fuzz::join_mpq(parts);
  std::unique_ptr<runtime::Model> m;
  runtime::Status s = runtime::Model::load(path, {1, runtime::Isa::kRef}, &m);
  ASSERT_TRUE(s.ok()) << s.message;
  const int64_t per_image = m->activation_bytes_per_image();
  ASSERT_GT(per_image, int64_t{256} << 20);
#if defined(__SANITIZE_ADDRESS__) || defined(__has_feature)
#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
  GTEST_SKIP() << "AddressSanitizer reserves the address space a cap would need";
#endif
#endif
  int pipe_fd[2];
  ASSERT_EQ(pipe(pipe_fd), 0);
  pid_t child = fork();
  if (child == 0) {
    // What the process maps now plus 256 MiB: far below 16 images' activations.
    size_t pages = 0;
    std::ifstream("/proc/self/statm") >> pages;
    const rlim_t cap_bytes = pages * sysconf(_SC_PAGESIZE) + (size_t{256} << 20);
    rlimit cap{cap_bytes, cap_bytes};
    setrlimit(RLIMIT_AS, &cap);
    std::vector<float> in(1), out(16 * 3);  // never read: the allocation fails first
    runtime::Status r = m->run(in.data(), 16, out.data());
    std::string msg = std::to_string(static_cast<int>(r.code)) + " " + r.message;
    ssize_t ignored = write(pipe_fd[1], msg.data(), msg.size());
    (void)ignored;
    _exit(0);
  }
  close(pipe_fd[1]);
  std::string got;
  char buf[512];
  for (ssize_t n; (n = read(pipe_fd[0], buf, sizeof(buf))) > 0;) got.append(buf, n);
  close(pipe_fd[0]);
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the child crashed: " << status;
  EXPECT_EQ(got.rfind(std::to_string(static_cast<int>(runtime::StatusCode::kOutOfMemory)), 0), 0u)
      << got;
  EXPECT_NE(got.find("out of memory"), std::string::npos) << got;
}

}  // namespace
}  // namespace mpq
