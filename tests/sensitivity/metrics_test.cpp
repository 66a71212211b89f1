// Sensitivity metrics on tiny models built in code: bn_scale reads γ (and says what to do when
// BN is gone), coding_length matches a direct log-det, hessian_trace converges to the exact
// trace, imprint profiles every layer, and the report survives JSON.
#include <c10/core/InferenceMode.h>
#include <torch/csrc/autograd/autograd.h>

#include "mpq/core/error.h"
#include "mpq/exec/executor.h"
#include "mpq/ir/passes.h"
#include "mpq/sensitivity/metric.h"
#include "test_util.h"

namespace mpq::sensitivity {
namespace {

using Ints = std::vector<int64_t>;

// conv -> BN -> relu -> conv -> BN -> relu -> GAP -> flatten -> fc; BN γ of 0.5 and 3.
ir::Graph bn_model() {
  at::manual_seed(4);
  test::GraphBuilder b({-1, 3, 6, 6});
  int x = b.g.inputs[0];
  auto block = [&](int in, int64_t cin, int64_t cout, double gamma, const std::string& name) {
    int w = b.constant(name + ".w", at::randn({cout, cin, 3, 3}) * 0.3);
    int c = b.op("Conv", {in, w}, {{"pads", Ints{1, 1, 1, 1}}}, name);
    int bn = b.op(
        "BatchNormalization",
        {c, b.constant(name + ".g", at::full({cout}, gamma)),
         b.constant(name + ".b", at::zeros({cout})), b.constant(name + ".m", at::zeros({cout})),
         b.constant(name + ".v", at::ones({cout}))},
        {}, name + ".bn");
    return b.op("Relu", {bn}, {}, name + ".relu");
  };
  int h = block(block(x, 3, 6, -0.5, "conv1"), 6, 6, 3.0, "conv2");
  int f = b.op("Flatten", {b.op("GlobalAveragePool", {h}, {}, "gap")}, {{"axis", int64_t{1}}},
               "flatten");
  int w = b.constant("fc.w", at::randn({3, 6}) * 0.5);
  return b.finish(b.op("Gemm", {f, w}, {{"transB", int64_t{1}}}, "fc"));
}

Options quiet() {
  Options o;
  o.progress = false;
  return o;
}

using test::error_of;

TEST(BnScale, ReadsGammaAndOmegaFallsWithWidth) {
  ir::Graph g = bn_model();
  Report r = compute("bn_scale", {g, nullptr, quiet()});
  ASSERT_EQ(r.layers.size(), 3u);
  EXPECT_DOUBLE_EQ(r.importance[0], 0.5);  // mean |γ|
  EXPECT_DOUBLE_EQ(r.importance[1], 3.0);
  EXPECT_DOUBLE_EQ(r.importance[2], 3.0);  // no BN after the classifier: the largest S
  for (const auto& row : r.omega)
    for (size_t k = 1; k < row.size(); ++k) EXPECT_LT(row[k], row[k - 1]);
  // Ω = S·‖ΔW‖², the layer's total error (DESIGN §4); --omega per-weight divides by n.
  auto errors = weight_errors(folded_weights(g), r.bits, quiet().weight_grid);
  Options per_weight = quiet();
  per_weight.per_weight_omega = true;
  Report p = compute("bn_scale", {g, nullptr, per_weight});
  for (size_t l = 0; l < r.layers.size(); ++l)
    for (size_t k = 0; k < r.bits.size(); ++k) {
      EXPECT_DOUBLE_EQ(r.omega[l][k], r.importance[l] * errors[l][k]);
      EXPECT_DOUBLE_EQ(p.omega[l][k], r.omega[l][k] / static_cast<double>(r.params[l]));
    }
  EXPECT_EQ(r.details["omega"], "importance * |dW|^2 (layer total)");
}

TEST(BnScale, WithoutBnItSaysHowToReExportOrFallsBack) {
  ir::Graph g = bn_model();
  ir::fold_batch_norm(g);
  g.source = "folded.onnx";
  std::string e = error_of([&] { compute("bn_scale", {g, nullptr, quiet()}); });
  EXPECT_NE(e.find("folded.onnx: bn_scale needs the BatchNormalization after each conv"),
            std::string::npos);
  EXPECT_NE(e.find("training=torch.onnx.TrainingMode.PRESERVE"), std::string::npos);
  EXPECT_NE(e.find("--fallback output_mse"), std::string::npos);
  Options o = quiet();
  o.fallback = "coding_length";
  Report r = compute("bn_scale", {g, nullptr, o});
  EXPECT_EQ(r.metric, "coding_length");
  EXPECT_EQ(r.details["fallback_from"], "bn_scale");
  o.fallback = "output_mse";  // needs data
  EXPECT_NE(error_of([&] {
              compute("bn_scale", {g, nullptr, o});
            }).find("needs data"),
            std::string::npos);
}

TEST(CodingLength, MatchesADirectLogDetOnBothGramSides) {
  for (Ints shape : {Ints{4, 3, 3, 3}, Ints{40, 2, 1, 1}}) {  // m < n and m > n
    at::manual_seed(1);
    test::GraphBuilder b({-1, shape[1], 4, 4});
    at::Tensor w = at::randn(shape);
    int c = b.op("Conv", {b.g.inputs[0], b.constant("w", w)}, {}, "conv");
    ir::Graph g = b.finish(c);
    Options o = quiet();
    o.epsilon = 0.7;
    Report r = compute("coding_length", {g, nullptr, o});
    at::Tensor m = w.to(at::kDouble).reshape({shape[0], -1});
    m = m / m.square().mean().sqrt();
    double rows = m.size(0), cols = m.size(1);
    at::Tensor a = at::eye(m.size(0), at::kDouble) + m.mm(m.t()) * (rows / (0.49 * cols));
    double length =
        (rows + cols) / 2 * std::get<1>(at::linalg_slogdet(a)).item<double>() / std::log(2.0);
    EXPECT_NEAR(r.details["coding_length"][0]["bits"].get<double>(), length, 1e-6 * length);
    EXPECT_NEAR(r.importance[0], length / w.numel(), 1e-9 * length);
  }
}

TEST(HessianTrace, ConvergesToTheExactTrace) {
  at::manual_seed(2);
  test::GraphBuilder b({-1, 1, 2, 3});
  int f = b.op("Flatten", {b.g.inputs[0]}, {{"axis", int64_t{1}}}, "flatten");
  int h =
      b.op("Gemm", {f, b.constant("w1", at::randn({5, 6}) * 0.5)}, {{"transB", int64_t{1}}}, "fc1");
  int t = b.op("Sigmoid", {h}, {}, "act");  // smooth, so the Hessian is not block-sparse
  int y = b.op("Gemm", {t, b.constant("w2", at::randn({3, 5}))}, {{"transB", int64_t{1}}}, "fc2");
  ir::Graph g = b.finish(y);
  auto ds = test::TensorDataset::random(32, 1, 2, 3, 3);
  data::Loader loader = test::loader_for(ds, 16);

  Options o = quiet();
  o.hutchinson_samples = 400;
  o.hutchinson_tolerance = 0;  // run all probes
  Report r = compute("hessian_trace", {g, &loader, o});
  EXPECT_EQ(r.details["samples"], 400);

  // Exact Tr(H) of each layer: Σ_i ∂²L/∂w_i² by one Hessian-vector product per unit vector.
  ir::Graph copy = g;
  std::vector<at::Tensor> params;
  for (const char* name : {"w1", "w2"}) {
    at::Tensor& w = copy.initializer(copy.value_id(name));
    w = w.detach().clone().requires_grad_(true);
    params.push_back(w);
  }
  exec::ExecOptions eo;
  eo.channels_last = false;
  exec::Executor e(copy, eo);
  at::Tensor loss = at::zeros({});
  for (int64_t bi = 0; bi < loader.batches(); ++bi) {
    data::Batch batch = loader.batch(bi);
    loss = loss + at::cross_entropy_loss(e.forward(batch.images), batch.labels) *
                      (batch.labels.numel() / 32.0);
  }
  auto grads = torch::autograd::grad({loss}, params, {}, true, true);
  for (size_t l = 0; l < params.size(); ++l) {
    double trace = 0;
    for (int64_t i = 0; i < params[l].numel(); ++i) {
      at::Tensor unit = at::zeros_like(params[l]).view({-1});
      unit[i] = 1;
      auto hv = torch::autograd::grad({(grads[l] * unit.view_as(params[l])).sum()}, {params[l]}, {},
                                      true);
      trace += hv[0].view({-1})[i].item<double>();
    }
    double estimate = r.details["trace"][l]["trace"].get<double>();
    EXPECT_NEAR(estimate, trace, 0.15 * std::abs(trace)) << "layer " << l;
  }
}

TEST(Imprint, ProfilesEveryLayerWithEitherLabels) {
  ir::Graph g = bn_model();
  auto ds = test::TensorDataset::random(60, 3, 6, 6, 3);
  data::Loader loader = test::loader_for(ds, 16);
  for (bool model_labels : {false, true}) {
    Options o = quiet();
    o.labels_from_model = model_labels;
    Report r = compute("imprint", {g, &loader, o});
    ASSERT_EQ(r.details["accuracy_profile"].size(), 3u);
    for (const auto& p : r.details["accuracy_profile"]) {
      EXPECT_GE(p["accuracy"].get<double>(), 0);
      EXPECT_LE(p["accuracy"].get<double>(), 100);
    }
    for (double i : r.importance) EXPECT_GE(i, 0.001);
    if (model_labels)  // the logits' own argmax: the last layer's predictor is (nearly) perfect
      EXPECT_GE(r.details["accuracy_profile"][2]["accuracy"].get<double>(), 90.0);
  }
  EXPECT_NE(error_of([&] {
              compute("imprint", {g, nullptr, quiet()});
            }).find("needs data"),
            std::string::npos);
}

TEST(Report, JsonRoundTripAndBaselines) {
  ir::Graph g = bn_model();
  Options o = quiet();
  o.seed = 7;
  Report a = compute("random", {g, nullptr, o});
  Report b = compute("random", {g, nullptr, o});
  EXPECT_EQ(a.importance, b.importance);  // seeded
  o.seed = 8;
  EXPECT_NE(compute("random", {g, nullptr, o}).importance, a.importance);
  Report back = report_from_json(to_json(a), "r.json");
  EXPECT_EQ(back.layers, a.layers);
  EXPECT_EQ(back.omega, a.omega);
  EXPECT_EQ(back.bits, a.bits);
  Report u = compute("uniform", {g, nullptr, quiet()});
  EXPECT_DOUBLE_EQ(u.omega_at(0, 4), u.params[0] * std::pow(4.0, -4));
  EXPECT_NE(error_of([&] {
              compute("nope", {g, nullptr, quiet()});
            }).find("unknown sensitivity metric 'nope'"),
            std::string::npos);
}

TEST(Reconstructed, SeesTheReconstructionAndMeasuresActivationsSeparately) {
  ir::Graph g = bn_model();
  auto ds = test::TensorDataset::random(64, 3, 6, 6, 3);
  data::Loader loader = test::loader_for(ds, 32);
  Options o = quiet();
  o.candidates = {2, 4, 8};
  o.a_candidates = {2, 8};
  o.recon_iters = 40;
  Report r = compute("reconstructed", {g, &loader, o});
  Report nearest = compute("output_mse", {g, &loader, o});
  ASSERT_EQ(r.layers, nearest.layers);
  ASSERT_EQ(r.bits, (std::vector<int>{2, 4, 8}));
  ASSERT_EQ(r.a_bits, (std::vector<int>{2, 8}));
  ASSERT_EQ(r.a_omega.size(), r.layers.size());
  for (size_t l = 0; l < r.layers.size(); ++l) {
    // Block reconstruction keeps nearest rounding when it cannot do better on the calibration
    // set, so the damage left is never much above nearest's (output_mse, max-|w| grid: the PTQ's
    // mse grid is already at least as good) and 2 bits hurt more than 8.
    EXPECT_LE(r.omega[l][0], nearest.omega[l][0] * 1.05 + 1e-9) << r.layers[l];
    EXPECT_GT(r.omega[l][0], r.omega[l][2]) << r.layers[l];
    EXPECT_GT(r.a_omega[l][0], r.a_omega[l][1]) << r.layers[l];
    EXPECT_DOUBLE_EQ(r.a_omega_at(l, 2), r.a_omega[l][0]);
    EXPECT_EQ(r.a_omega_at(l, 32), 0.0);  // float: no damage
  }
  // Some layer is repaired: 2-bit damage below round-to-nearest's.
  bool repaired = false;
  for (size_t l = 0; l < r.layers.size(); ++l)
    repaired |= r.omega[l][0] < 0.9 * nearest.omega[l][0];
  EXPECT_TRUE(repaired);
  EXPECT_NE(error_of([&] { r.a_omega_at(0, 4); }).find("activation width 4 was not measured"),
            std::string::npos);
  // The activation columns survive JSON.
  Report back = report_from_json(to_json(r), "r.json");
  EXPECT_EQ(back.a_bits, r.a_bits);
  EXPECT_EQ(back.a_omega, r.a_omega);
}

}  // namespace
}  // namespace mpq::sensitivity
