// Every bad input gets one mpq::Error whose one-line message names the file / node / value.
#include <onnx/onnx_pb.h>

#include <fstream>
#include <limits>
#include <random>

#include "mpq/core/error.h"
#include "mpq/export/onnx_writer.h"
#include "mpq/import/onnx_importer.h"
#include "test_util.h"

namespace mpq {
namespace {

// Expects load_onnx(path) to throw one line that contains every `needle`.
void expect_error(const std::string& path, std::vector<std::string> needles) {
  try {
    import::load_onnx(path);
    FAIL() << "no error for " << path;
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "not one line: " << msg;
    for (const auto& n : needles)
      EXPECT_NE(msg.find(n), std::string::npos) << "'" << n << "' not in: " << msg;
  }
}

void write(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string relu_model_bytes() {
  test::GraphBuilder b({-1, 4});
  return export_::to_onnx_bytes(b.finish(b.op("Relu", {b.g.inputs[0]}, {}, "act")));
}

onnx::ModelProto relu_model() {
  onnx::ModelProto m;
  m.ParseFromString(relu_model_bytes());
  return m;
}

TEST(BadOnnx, RandomBytes) {
  auto dir = test::temp_dir("bad_onnx");
  std::mt19937 rng(1);
  std::string bytes(4096, '\0');
  for (auto& c : bytes) c = static_cast<char>(rng());
  write(dir / "random.onnx", bytes);
  expect_error(dir / "random.onnx", {"random.onnx", "not a valid ONNX model"});
}

TEST(BadOnnx, TruncatedFile) {
  auto dir = test::temp_dir("bad_onnx");
  std::string bytes = relu_model_bytes();
  write(dir / "truncated.onnx", bytes.substr(0, bytes.size() * 2 / 3));
  expect_error(dir / "truncated.onnx", {"truncated.onnx", "truncated"});
}

TEST(BadOnnx, MissingFile) {
  expect_error("/nonexistent/model.onnx", {"/nonexistent/model.onnx", "does not exist"});
}

TEST(BadOnnx, UnsupportedOpNamesOpNodeAndTheSupportedOnes) {
  auto dir = test::temp_dir("bad_onnx");
  onnx::ModelProto m = relu_model();
  m.mutable_graph()->mutable_node(0)->set_op_type("NonMaxSuppression");
  write(dir / "nms.onnx", m.SerializeAsString());
  expect_error(dir / "nms.onnx", {"nms.onnx", "unsupported op 'NonMaxSuppression'", "node 'act'",
                                  "supported:", "Conv"});
}

TEST(BadOnnx, InitializerReferencedButMissing) {
  auto dir = test::temp_dir("bad_onnx");
  onnx::ModelProto m = relu_model();
  m.mutable_graph()->mutable_node(0)->set_op_type("Add");
  m.mutable_graph()->mutable_node(0)->add_input("bias_that_was_dropped");
  write(dir / "noinit.onnx", m.SerializeAsString());
  expect_error(dir / "noinit.onnx", {"noinit.onnx", "bias_that_was_dropped", "node 'act'"});
}

// The Relu model made an Add of a float initializer 'w' of `dims` (its data still to set).
onnx::ModelProto with_weight(const std::vector<int64_t>& dims) {
  onnx::ModelProto m = relu_model();
  auto* g = m.mutable_graph();
  g->mutable_node(0)->set_op_type("Add");
  g->mutable_node(0)->add_input("w");
  auto* t = g->add_initializer();
  t->set_name("w");
  t->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t->add_dims(d);
  return m;
}

// ... with 'w' (4 floats) stored as external data with these entries (location, offset, length).
onnx::ModelProto with_external_weight(
    const std::vector<std::pair<std::string, std::string>>& entries) {
  onnx::ModelProto m = with_weight({4});
  auto* t = m.mutable_graph()->mutable_initializer(m.graph().initializer_size() - 1);
  t->set_data_location(onnx::TensorProto::EXTERNAL);
  for (const auto& [key, value] : entries) {
    auto* kv = t->add_external_data();
    kv->set_key(key);
    kv->set_value(value);
  }
  return m;
}

TEST(BadOnnx, ExternalDataAbsent) {
  auto dir = test::temp_dir("bad_onnx");
  write(dir / "ext.onnx", with_external_weight({{"location", "weights.bin"}}).SerializeAsString());
  expect_error(dir / "ext.onnx", {"initializer 'w'", "weights.bin", "missing"});
  // With the file present (16 bytes = 4 floats) the same model loads.
  write(dir / "weights.bin", std::string(16, '\0'));
  EXPECT_NO_THROW(import::load_onnx(dir / "ext.onnx"));
}

TEST(BadOnnx, ExternalDataOutsideTheModelFolderOrNotAFile) {
  // Found by fuzzing: external data may not climb out of the model's folder or name a device
  // (reading /dev/zero never ends); offsets must be numbers (std::stoll used to throw).
  auto dir = test::temp_dir("bad_onnx_ext");
  write(dir / "weights.bin", std::string(16, '\0'));
  auto expect = [&](std::vector<std::pair<std::string, std::string>> entries,
                    std::vector<std::string> needles) {
    write(dir / "ext.onnx", with_external_weight(entries).SerializeAsString());
    expect_error(dir / "ext.onnx", needles);
  };
  expect({{"location", "../weights.bin"}},
         {"initializer 'w'", "'../weights.bin'", "inside the model's folder"});
  expect({{"location", "/dev/zero"}}, {"'/dev/zero'", "inside the model's folder"});
  expect({{"location", "weights.bin"}, {"offset", "12abc"}},
         {"'offset' = '12abc'", "non-negative integer"});
  expect({{"location", "weights.bin"}, {"length", "99999999999999999999999"}},
         {"'length'", "non-negative integer"});
  expect({{"location", "weights.bin"}, {"offset", "9223372036854775807"}},
         {"needs offset 9223372036854775807"});
}

TEST(BadOnnx, ShapesWhoseElementCountOverflowAndNamesWithNewlines) {
  auto dir = test::temp_dir("bad_onnx_shape");
  const int64_t big = int64_t{1} << 20;
  onnx::ModelProto m = with_weight({big, big, big, big});  // 2^80 elements
  m.mutable_graph()
      ->mutable_initializer(m.graph().initializer_size() - 1)
      ->set_raw_data(std::string(16, '\0'));
  write(dir / "huge.onnx", m.SerializeAsString());
  expect_error(dir / "huge.onnx", {"initializer 'w'", "more than 2^40 elements"});
  // A node reading a value whose name holds a newline: the error escapes it.
  m = relu_model();
  m.mutable_graph()->mutable_node(0)->set_input(0, "a\nb");
  write(dir / "newline.onnx", m.SerializeAsString());
  expect_error(dir / "newline.onnx", {"'a\\nb'"});
  // An op without the inputs it needs.
  m = relu_model();
  m.mutable_graph()->mutable_node(0)->set_op_type("Add");
  write(dir / "arity.onnx", m.SerializeAsString());
  expect_error(dir / "arity.onnx", {"node 'act'", "input 1 is missing (Add needs 2)"});
}

TEST(BadOnnx, NonFiniteWeights) {
  auto dir = test::temp_dir("bad_onnx");
  test::GraphBuilder b({-1, 3});
  at::Tensor w = at::ones({3});
  w[1] = std::numeric_limits<float>::quiet_NaN();
  ir::Graph g = b.finish(b.op("Add", {b.g.inputs[0], b.constant("bias", w)}));
  write(dir / "nan.onnx", export_::to_onnx_bytes(g));
  expect_error(dir / "nan.onnx", {"nan.onnx", "initializer 'bias'", "1 NaN/Inf value(s) of 3"});
}

TEST(BadOnnx, BadAttributeNamesTheNodeAndValue) {
  auto dir = test::temp_dir("bad_onnx");
  test::GraphBuilder b({-1, 2, 4, 4});
  int w = b.constant("w", at::randn({2, 2, 3, 3}));
  ir::Graph g = b.finish(
      b.op("Conv", {b.g.inputs[0], w},
           {{"kernel_shape", std::vector<int64_t>{3, 3}}, {"auto_pad", std::string("SOMETIMES")}},
           "conv7"));
  onnx::ModelProto m;
  m.ParseFromString(export_::to_onnx_bytes(g));
  write(dir / "attr.onnx", m.SerializeAsString());
  expect_error(dir / "attr.onnx", {"attr.onnx", "node 'conv7' (Conv)", "SOMETIMES"});
}

}  // namespace
}  // namespace mpq
