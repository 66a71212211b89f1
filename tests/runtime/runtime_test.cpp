// The integer runtime against the fake-quant simulation of the same .mpq file, on a tiny network
// built in code that has every op the runtime lowers: conv (3x3, strided, 1x1, grouped),
// depthwise conv,
// Relu/Clip(0,6) fused into requantization, MaxPool (padded, ceil mode), a residual Add, the
// option-A shortcut (strided Slice + channel Pad), Concat, a channel shuffle (Reshape, Transpose,
// Reshape, its shape computed by Shape/Gather/Div/Unsqueeze/Concat), BatchNormalization (an
// affine step), AveragePool, squeeze-excite (Sigmoid, SiLU, HardSigmoid, channel Mul), HardSwish,
// global pooling and Gemm. Every kernel set gives the same bits.
#include "mpq/runtime/runtime.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "mpq/exec/executor.h"
#include "mpq/export/packed.h"
#include "mpq/export/quantized.h"
#include "mpq/ir/passes.h"
#include "mpq/ptq/rounding.h"
#include "mpq/quant/quant_sim.h"
#include "test_util.h"

namespace mpq {
namespace {

using Ints = std::vector<int64_t>;

ir::Graph tiny_net() {
  at::manual_seed(11);
  test::GraphBuilder b({-1, 3, 12, 12});
  auto conv = [&](int x, int64_t in, int64_t out, int64_t k, int64_t stride, int64_t group,
                  const std::string& name) {
    int64_t pad = k / 2;
    int w = b.constant(name + ".w",
                       at::randn({out, in / group, k, k}) * (1.4 / std::sqrt(in / group * k * k)));
    int bias = b.constant(name + ".b", at::randn({out}) * 0.1);
    return b.op(
        "Conv", {x, w, bias},
        {{"pads", Ints{pad, pad, pad, pad}}, {"strides", Ints{stride, stride}}, {"group", group}},
        name);
  };
  int x = b.op("Relu", {conv(b.g.inputs[0], 3, 8, 3, 1, 1, "stem")}, {}, "stem.relu");
  // 12x12 -> 6x6 (rows) and 7x7 (columns, padded): ceil mode adds a last window that starts in
  // the map and ends beyond it.
  x = b.op("MaxPool", {x},
           {{"kernel_shape", Ints{3, 3}},
            {"strides", Ints{2, 2}},
            {"pads", Ints{0, 1, 0, 1}},
            {"ceil_mode", int64_t{1}}},
           "stem.pool");
  int y = b.op("Relu", {conv(x, 8, 8, 3, 1, 2, "block.conv1")}, {}, "block.relu1");  // 2 groups
  int sum = b.op("Add", {conv(y, 8, 8, 3, 1, 1, "block.conv2"), x}, {}, "block.add");
  sum = b.op("Relu", {sum}, {}, "block.relu2");
  // Depthwise with Clip(0, 6), then a 1x1 conv; the shortcut: strided slice, channel padding.
  int lo = b.constant("six.lo", at::scalar_tensor(0.0f)),
      hi = b.constant("six.hi", at::scalar_tensor(6.0f));
  int dw = b.op("Clip", {conv(sum, 8, 8, 3, 2, 8, "down.dw"), lo, hi}, {}, "down.relu6");
  // Squeeze-excite (MobileNetV3's: HardSigmoid gate; EfficientNet's: SiLU inside, Sigmoid gate),
  // then HardSwish.
  int se = b.op("GlobalAveragePool", {dw}, {}, "se.pool");
  se = conv(se, 8, 4, 1, 1, 1, "se.fc1");
  se = b.op("Mul", {se, b.op("Sigmoid", {se}, {}, "se.sigmoid1")}, {}, "se.silu");
  se = b.op("HardSigmoid", {conv(se, 4, 8, 1, 1, 1, "se.fc2")}, {{"alpha", 1.0 / 6}, {"beta", 0.5}},
            "se.gate");
  dw = b.op("Mul", {se, dw}, {}, "se.scale");
  dw = b.op("Mul", {dw, b.op("HardSigmoid", {dw}, {{"alpha", 1.0 / 6}, {"beta", 0.5}}, "hs.gate")},
            {}, "hardswish");  // HardSwish as opset 13 writes it
  int pw = conv(dw, 8, 12, 1, 1, 1, "down.pw");
  int starts = b.constant("slice.starts", at::tensor({0, 0}, at::kLong));
  int ends = b.constant("slice.ends", at::tensor({1000, 1000}, at::kLong));
  int axes = b.constant("slice.axes", at::tensor({2, 3}, at::kLong));
  int steps = b.constant("slice.steps", at::tensor({2, 2}, at::kLong));
  int sliced = b.op("Slice", {sum, starts, ends, axes, steps}, {}, "shortcut.slice");
  int pads = b.constant("shortcut.pads", at::tensor({0, 2, 0, 0, 0, 2, 0, 0}, at::kLong));
  int padded = b.op("Pad", {sliced, pads}, {}, "shortcut.pad");
  int out = b.op("Relu", {b.op("Add", {pw, padded}, {}, "down.add")}, {}, "down.relu");
  // Three maps of different scales side by side (one of them twice).
  int cat = b.op("Concat", {out, padded, out}, {{"axis", int64_t{1}}}, "concat");
  // A channel shuffle of 3 groups (ShuffleNet's Reshape -> Transpose -> Reshape; its target
  // shape from shape arithmetic, as exporters write it).
  int channels =
      b.op("Gather",
           {b.op("Shape", {cat}, {}, "shape"), b.constant("one", at::scalar_tensor(1, at::kLong))},
           {{"axis", int64_t{0}}}, "channels");
  int per_group = b.op("Div", {channels, b.constant("three", at::scalar_tensor(3, at::kLong))}, {},
                       "per_group");
  int grouped_shape =
      b.op("Concat",
           {b.constant("g.head", at::tensor({-1, 3}, at::kLong)),
            b.op("Unsqueeze", {per_group, b.constant("g.axes", at::tensor({0}, at::kLong))}, {},
                 "per_group.unsqueeze"),
            b.constant("g.tail", at::tensor({3, 4}, at::kLong))},
           {{"axis", int64_t{0}}}, "grouped_shape");
  int grouped = b.op("Reshape", {cat, grouped_shape}, {}, "shuffle.group");
  int swapped = b.op("Transpose", {grouped}, {{"perm", Ints{0, 2, 1, 3, 4}}}, "shuffle.swap");
  cat =
      b.op("Reshape", {swapped, b.constant("shuffle.shape", at::tensor({-1, 36, 3, 4}, at::kLong))},
           {}, "shuffle");
  // DenseNet's BatchNormalization after a Concat (no conv to fold into; some scales negative),
  // its Relu, then a 2x2 average pool (3x4 -> 1x2).
  int bn =
      b.op("BatchNormalization",
           {cat, b.constant("bn.scale", at::randn({36})), b.constant("bn.bias", at::randn({36})),
            b.constant("bn.mean", at::randn({36})), b.constant("bn.var", at::rand({36}) * 2 + 0.1)},
           {{"epsilon", 1e-5}}, "bn");
  int avg = b.op("AveragePool", {b.op("Relu", {bn}, {}, "bn.relu")},
                 {{"kernel_shape", Ints{2, 2}}, {"strides", Ints{2, 2}}}, "avg");
  int pooled = b.op("GlobalAveragePool", {avg}, {}, "pool");
  int flat = b.op("Flatten", {pooled}, {{"axis", int64_t{1}}}, "flatten");
  int w = b.constant("fc.w", at::randn({5, 36}) * 0.5);
  int fb = b.constant("fc.b", at::randn({5}) * 0.1);
  return b.finish(b.op("Gemm", {flat, w, fb}, {{"transB", int64_t{1}}}, "fc"));
}

struct Compared {
  double agreement = 0, relative = 0;
};

// Quantizes the tiny net uniformly at (w, a), writes the .mpq and runs it on every kernel set.
Compared compare(int w_bits, int a_bits, int first_last = 0) {
  ir::Graph g = tiny_net();
  auto ds = test::TensorDataset::random(128, 3, 12, 12, 5, 2);
  data::Loader loader = test::loader_for(ds, 64);
  quant::QuantSim sim(
      g, allocation::uniform_plan(exec::quantizable_layers(g), w_bits, a_bits, first_last));
  sim.calibrate(loader, quant::CalibrationOptions{"minmax", {}, false, false});
  ptq::make_rounding("nearest")->apply(sim, loader, {});
  auto dir = test::temp_dir("runtime_tiny");
  std::string path = (dir / "tiny.mpq").string();
  export_::save_packed(export_::export_quantized(sim), sim, path);

  c10::InferenceMode guard;
  at::Tensor x = loader.batch(0).images.contiguous();
  ir::Graph packed = export_::load_packed(path);
  ir::fold_batch_norm(packed);
  at::Tensor want = exec::Executor(packed).forward(x);

  at::Tensor first;
  for (runtime::Isa isa : {runtime::Isa::kRef, runtime::Isa::kAvx2, runtime::Isa::kAvx512Vnni}) {
    if (!runtime::isa_supported(isa)) {
      std::printf("skipped: this CPU does not run the %s kernels\n", runtime::isa_name(isa));
      continue;
    }
    std::unique_ptr<runtime::Model> m;
    runtime::Status s = runtime::Model::load(path, {2, isa}, &m);
    EXPECT_TRUE(s.ok()) << s.message;
    if (!s.ok()) return {};
    EXPECT_EQ(m->classes(), 5);
    // Every op of the net reached the runtime as its own kind of step (none folded away).
    std::set<std::string> kinds;
    for (const runtime::StepInfo& si : m->steps()) kinds.insert(si.kind);
    for (const char* kind : {"maxpool", "concat", "shuffle", "affine", "avgpool", "gap", "dwconv",
                             "mul", "sigmoid", "hardsigmoid", "gconv"})
      EXPECT_EQ(kinds.count(kind), 1u) << kind;
    at::Tensor got = at::empty({x.size(0), 5});
    EXPECT_TRUE(
        m->run(x.data_ptr<float>(), static_cast<int>(x.size(0)), got.data_ptr<float>()).ok());
    // A second run reuses the buffers, shared between tensors: the same logits.
    at::Tensor again = at::empty_like(got);
    EXPECT_TRUE(
        m->run(x.data_ptr<float>(), static_cast<int>(x.size(0)), again.data_ptr<float>()).ok());
    EXPECT_TRUE(at::equal(again, got)) << runtime::isa_name(isa) << ": a second run differs";
    // One image at a time takes the other path through the executor (steps split over cores).
    at::Tensor one = at::empty({1, 5});
    EXPECT_TRUE(m->run(x.data_ptr<float>() + 7 * x[0].numel(), 1, one.data_ptr<float>()).ok());
    EXPECT_TRUE(at::equal(one[0], got[7])) << runtime::isa_name(isa);
    EXPECT_TRUE(m->run(x.data_ptr<float>() + 7 * x[0].numel(), 1, one.data_ptr<float>()).ok());
    EXPECT_TRUE(at::equal(one[0], got[7])) << runtime::isa_name(isa) << ": a second single run";
    if (!first.defined()) first = got;
    EXPECT_TRUE(at::equal(got, first)) << runtime::isa_name(isa) << " differs from ref";
  }
  Compared c;
  c.agreement = want.argmax(1).eq(first.argmax(1)).to(at::kDouble).mean().item<double>();
  c.relative = ((want - first).abs().mean() / want.abs().mean()).item<double>();
  std::printf(
      "W%dA%d (first/last %d): argmax agreement %.3f, mean |logit difference| %.2e of the mean "
      "|logit|\n",
      w_bits, a_bits, first_last, c.agreement, c.relative);
  return c;
}

TEST(IntegerRuntime, MatchesTheSimulationAtEveryWidthAndEveryKernelSetGivesTheSameBits) {
  // Exact arithmetic against float: the logits agree to float precision (a flipped rounding
  // anywhere would show as 1e-4 or more), and so do the predictions. With the first and last
  // layers pinned at 8 bits, 4-bit feature maps meet the 8-bit pooled features. (The Sigmoid
  // input once took the scale of the largest channel's accumulator step and flipped one W3A6
  // rounding: 4.3e-5.)
  for (int first_last : {0, 8})
    for (auto [w, a] : {std::pair{8, 8}, {4, 8}, {4, 4}, {2, 4}, {3, 6}, {6, 5}}) {
      Compared c = compare(w, a, first_last);
      EXPECT_EQ(c.agreement, 1.0) << "W" << w << "A" << a;
      EXPECT_LE(c.relative, 1e-5) << "W" << w << "A" << a;
    }
}

TEST(IntegerRuntime, BadFilesAreStatusesWithOneLineMessages) {
  auto dir = test::temp_dir("runtime_bad");
  std::unique_ptr<runtime::Model> m;
  runtime::Status s = runtime::Model::load((dir / "missing.mpq").string(), {}, &m);
  EXPECT_EQ(s.code, runtime::StatusCode::kBadFile);
  EXPECT_NE(s.message.find("missing.mpq"), std::string::npos) << s.message;

  std::string junk = (dir / "junk.mpq").string();
  std::ofstream(junk) << "not a model at all";
  s = runtime::Model::load(junk, {}, &m);
  EXPECT_EQ(s.code, runtime::StatusCode::kBadFile);
  EXPECT_NE(s.message.find("MPQP"), std::string::npos) << s.message;

  // A real file cut short: the sections run past the end.
  compare(8, 8);
  std::string whole = (test::temp_dir("runtime_tiny") / "tiny.mpq").string();
  std::ifstream in(whole, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  std::string cut = (dir / "cut.mpq").string();
  std::ofstream(cut, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  s = runtime::Model::load(cut, {}, &m);
  EXPECT_EQ(s.code, runtime::StatusCode::kBadFile);
  EXPECT_NE(s.message.find("truncated"), std::string::npos) << s.message;
  EXPECT_EQ(s.message.find('\n'), std::string::npos);

  s = runtime::Model::load(whole, {0, runtime::Isa::kAuto}, &m);
  EXPECT_EQ(s.code, runtime::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message.find("threads = 0"), std::string::npos) << s.message;
}

}  // namespace
}  // namespace mpq
