// BitPlan JSON: round trip, uniform plans, and every malformed plan rejected in one line.
#include "mpq/allocation/bit_plan.h"

#include "mpq/core/error.h"
#include "test_util.h"

namespace mpq::allocation {
namespace {

std::vector<ir::LayerInfo> three_layers() {
  std::vector<ir::LayerInfo> layers(3);
  const char* names[] = {"conv1", "conv2", "fc"};
  for (int i = 0; i < 3; ++i) {
    layers[i].name = names[i];
    layers[i].op = i < 2 ? "Conv" : "Gemm";
    layers[i].params = 100 * (i + 1);
  }
  return layers;
}

using test::error_of;

TEST(BitPlan, UniformPinsFirstAndLastLayers) {
  BitPlan p = uniform_plan(three_layers(), 3, 4);
  EXPECT_EQ(p.find("conv1")->w_bits, 8);
  EXPECT_EQ(p.find("conv1")->a_bits, 8);
  EXPECT_EQ(p.find("conv2")->w_bits, 3);
  EXPECT_EQ(p.find("conv2")->a_bits, 4);
  EXPECT_EQ(p.find("fc")->w_bits, 8);
  BitPlan free = uniform_plan(three_layers(), 3, 4, 0);
  EXPECT_EQ(free.find("conv1")->w_bits, 3);
  EXPECT_EQ(free.find("fc")->a_bits, 4);
  // Σ params·bits / Σ params = (100·8 + 200·3 + 300·8) / 600.
  EXPECT_DOUBLE_EQ(average_w_bits(p, three_layers()), (800.0 + 600 + 2400) / 600);
}

TEST(BitPlan, JsonRoundTrip) {
  BitPlan p = uniform_plan(three_layers(), 5, 6);
  p.model = "m.onnx";
  p.predicted = {{"size_bytes", 123}};
  auto dir = test::temp_dir("plan");
  save_bit_plan(p, (dir / "plan.json").string());
  BitPlan q = load_bit_plan((dir / "plan.json").string());
  EXPECT_EQ(to_json(q), to_json(p));
  EXPECT_NO_THROW(check_plan(q, three_layers(), "plan.json"));
}

TEST(BitPlan, RejectsMalformedPlansInOneLine) {
  auto layers = three_layers();
  auto check = [&](const std::string& text) {
    return error_of([&] { check_plan(parse_bit_plan(text, "p.json"), layers, "p.json"); });
  };
  std::string ok_rest =
      R"({"name":"conv2","w_bits":4,"a_bits":8},{"name":"fc","w_bits":8,"a_bits":8}]})";
  EXPECT_NE(check("{\"layers\": [").find("p.json: not valid JSON"), std::string::npos);
  EXPECT_NE(check("[1,2]").find("a bit plan is a JSON object"), std::string::npos);
  EXPECT_NE(check("{}").find("missing the \"layers\" array"), std::string::npos);
  EXPECT_EQ(check(R"({"layers":[{"name":"conv1","w_bits":9,"a_bits":8},)" + ok_rest),
            "p.json: layer 'conv1': \"w_bits\" = 9: widths are 2..8, or 16/32 for float");
  EXPECT_NE(check(R"({"layers":[{"name":"conv1","w_bits":4,"a_bits":1},)" + ok_rest)
                .find("\"a_bits\" = 1"),
            std::string::npos);
  EXPECT_NE(check(R"({"layers":[{"name":"conv1","w_bits":4.5,"a_bits":8},)" + ok_rest)
                .find("must be an integer"),
            std::string::npos);
  EXPECT_NE(check(R"({"layers":[{"name":"conv1","w_bits":4},)" + ok_rest)
                .find("layer 'conv1': missing \"a_bits\""),
            std::string::npos);
  EXPECT_NE(check(R"({"layers":[{"name":"conv2","w_bits":4,"a_bits":8},)" + ok_rest)
                .find("layer 'conv2': listed twice"),
            std::string::npos);
  EXPECT_NE(check(R"({"layers":[{"name":"conv9","w_bits":4,"a_bits":8},)" + ok_rest)
                .find("layer 'conv9' is not a quantized layer of the model"),
            std::string::npos);
  EXPECT_EQ(check(R"({"layers":[)" + ok_rest),
            "p.json: no entry for layer 'conv1' (Conv); every quantized layer needs w_bits and "
            "a_bits");
  for (const std::string& e :
       {check("{"), check(R"({"layers":[{"name":"conv1","w_bits":4},)" + ok_rest)})
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  EXPECT_EQ(check(R"({"layers":[{"name":"conv1","w_bits":32,"a_bits":16},)" + ok_rest), "");
  // Found by fuzzing: a number too large for a double was an uncaught json exception.
  EXPECT_NE(check(R"({"layers":[{"name":"conv1","w_bits":1e99999,"a_bits":8},)" + ok_rest)
                .find("p.json: not valid JSON"),
            std::string::npos);
}

TEST(BitPlan, ValidWidths) {
  for (int b = 0; b <= 40; ++b)
    EXPECT_EQ(valid_bits(b), (b >= 2 && b <= 8) || b == 16 || b == 32) << b;
  EXPECT_THROW(uniform_plan(three_layers(), 1, 8), Error);
  EXPECT_THROW(uniform_plan(three_layers(), 4, 12), Error);
}

}  // namespace
}  // namespace mpq::allocation
