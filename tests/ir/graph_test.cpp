#include "mpq/ir/graph.h"

#include "mpq/core/error.h"
#include "mpq/exec/executor.h"
#include "test_util.h"

namespace mpq {
namespace {

TEST(Graph, TopoSortOrdersNodesAfterTheirInputs) {
  test::GraphBuilder b({-1, 4});
  int x = b.g.inputs[0];
  // Add nodes out of order: the Relu reads the Sigmoid's output but comes first.
  int mid = b.g.add_value("mid");
  int out = b.g.add_value("out");
  b.g.add_node(ir::Node{"relu", "Relu", {mid}, {out}, {}});
  b.g.add_node(ir::Node{"sig", "Sigmoid", {x}, {mid}, {}});
  b.g.outputs = {out};
  b.g.topo_sort();
  ASSERT_EQ(b.g.nodes.size(), 2u);
  EXPECT_EQ(b.g.nodes[0].name, "sig");
  EXPECT_EQ(b.g.nodes[1].name, "relu");
  EXPECT_EQ(b.g.values[out].producer, 1);
}

TEST(Graph, TopoSortRejectsACycleAndAnUnknownInput) {
  test::GraphBuilder b({-1, 4});
  int a = b.g.add_value("a"), c = b.g.add_value("c");
  b.g.add_node(ir::Node{"n1", "Relu", {c}, {a}, {}});
  b.g.add_node(ir::Node{"n2", "Relu", {a}, {c}, {}});
  EXPECT_THROW(b.g.topo_sort(), Error);

  test::GraphBuilder u({-1, 4});
  int missing = u.g.add_value("weight_that_is_not_there");
  u.op("Add", {u.g.inputs[0], missing});
  try {
    u.g.topo_sort();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("weight_that_is_not_there"), std::string::npos)
        << e.what();
  }
}

TEST(Graph, RemoveDeadDropsUnusedNodesAndInitializers) {
  test::GraphBuilder b({-1, 4});
  int used = b.op("Relu", {b.g.inputs[0]});
  b.op("Sigmoid", {b.g.inputs[0]});  // nobody reads it
  b.constant("unused", at::ones({3}));
  ir::Graph g = b.finish(used);
  g.remove_dead();
  EXPECT_EQ(g.nodes.size(), 1u);
  EXPECT_TRUE(g.initializers().empty());
}

TEST(Graph, QuantizableLayersCountParamsAndMacs) {
  test::GraphBuilder b({-1, 3, 8, 8});
  int w = b.constant("w", at::randn({16, 3, 3, 3}));
  int conv = b.op("Conv", {b.g.inputs[0], w},
                  {{"kernel_shape", std::vector<int64_t>{3, 3}},
                   {"strides", std::vector<int64_t>{2, 2}},
                   {"pads", std::vector<int64_t>{1, 1, 1, 1}}},
                  "conv");
  int dw = b.constant("dw", at::randn({16, 1, 3, 3}));
  int dconv = b.op("Conv", {conv, dw},
                   {{"kernel_shape", std::vector<int64_t>{3, 3}},
                    {"group", int64_t{16}},
                    {"pads", std::vector<int64_t>{1, 1, 1, 1}}},
                   "dw");
  int flat = b.op("Flatten", {dconv});
  int fw = b.constant("fw", at::randn({10, 16 * 4 * 4}));
  int fc = b.op("Gemm", {flat, fw}, {{"transB", int64_t{1}}}, "fc");
  ir::Graph g = b.finish(fc);
  auto layers = exec::quantizable_layers(g);
  ASSERT_EQ(layers.size(), 3u);
  EXPECT_EQ(layers[0].name, "conv");
  EXPECT_EQ(layers[0].params, 16 * 3 * 9);
  EXPECT_EQ(layers[0].macs, 16 * 4 * 4 * (3 * 9));  // 4x4 output, 27 MACs each
  EXPECT_EQ(layers[1].macs, 16 * 4 * 4 * 9);        // depthwise: 9 MACs per output
  EXPECT_EQ(layers[2].macs, 10 * 256);
  EXPECT_FALSE(layers[0].has_bn);
}

}  // namespace
}  // namespace mpq
