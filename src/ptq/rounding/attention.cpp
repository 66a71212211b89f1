// attention (Attention Round): every weight may take any level k of its grid [qmin, qmax]. A
// continuous V per weight (initialised to W/s, clipped to the grid) sets a Gaussian attention
// over the levels, π_k = softmax_k(−(V − k)²/(2σ²)), and the weight used is s·Σ_k π_k·k
// (deterministic) or s·k with k drawn from π, the gradient taken through the expectation
// (stochastic, straight-through). V is optimised with Adam (lr 5e-3, in grid units) on the
// layer reconstruction loss; the result is round(clip(V)).
//
// σ schedule: σ_t = σ_0·(σ_end/σ_0)^t for progress t in [0, 1], σ_0 = 1.0 and σ_end = 0.05:
// geometric, so the attention spends equal numbers of iterations at every scale. At σ = 1
// a weight still draws on levels two and three steps away (its gradient can carry it past the
// nearest pair, which AdaRound cannot do); by σ ≈ 0.3 only the two neighbours matter; at
// σ = 0.05 a weight at distance d < 0.45 from its nearest level gives the next level a weight
// below exp(−(1 − 2d)/(2σ²)) < e^−20, so the final hard rounding changes the loss by almost
// nothing except for the few weights still within 0.05 of a midpoint.
//
// Window: the attention is computed over the 16 levels floor(V)−7 .. floor(V)+8 (those on the
// grid), not all 2^b−1, so memory and time stay flat with the width (a 1.28 M-weight 8-bit
// classifier would need 255 levels per weight). Up to 4 bits the window holds the whole grid.
// It moves with V, so every level stays reachable; a level outside it is more than 7 steps
// from V and would get attention below exp(−49/2) ≈ 2e−11 even at σ_0 = 1.
#include <limits>

#include "mpq/ptq/reconstruction.h"

namespace mpq::ptq {

using quant::IntRange;
using quant::QuantSim;

namespace {

constexpr double kSigmaStart = 1.0, kSigmaEnd = 0.05;
constexpr int64_t kWindow = 16;  // levels the attention spans around V

class AttentionVariable : public SoftRounding {
 public:
  explicit AttentionVariable(bool stochastic) : stochastic_(stochastic) {}
  at::Tensor init(const at::Tensor& w_over_s, IntRange range) override {
    range_ = range;
    offsets_ = at::arange(-kWindow / 2 + 1, kWindow / 2 + 1, at::kFloat);
    return w_over_s.clamp(range.qmin, range.qmax);
  }
  at::Tensor soft(const at::Tensor& v, double t) override {
    double sigma = kSigmaStart * std::pow(kSigmaEnd / kSigmaStart, t);
    at::Tensor base = v.detach().clamp(range_.qmin, range_.qmax).floor().unsqueeze(-1);
    at::Tensor levels = base + offsets_;  // [..., kWindow]
    at::Tensor off_grid = (levels < range_.qmin).logical_or(levels > range_.qmax);
    at::Tensor logits = (-(v.unsqueeze(-1) - levels).square() / (2 * sigma * sigma))
                            .masked_fill(off_grid, -std::numeric_limits<float>::infinity());
    at::Tensor pi = at::softmax(logits, -1);
    at::Tensor expect = (pi * levels).sum(-1);
    if (!stochastic_) return expect;
    at::Tensor pick = at::multinomial(pi.detach().reshape({-1, kWindow}), 1);
    at::Tensor k = levels.reshape({-1, kWindow}).gather(1, pick).reshape(v.sizes());
    return expect + (k - expect).detach();  // straight-through: forward k, gradient of E[k]
  }
  at::Tensor regularizer(const at::Tensor&, double) override { return at::zeros({}); }
  at::Tensor hard(const at::Tensor& v) override {
    return v.clamp(range_.qmin, range_.qmax).round().to(at::kChar);
  }

 private:
  bool stochastic_;
  IntRange range_;
  at::Tensor offsets_;
};

class Attention : public Rounding {
 public:
  explicit Attention(bool stochastic = false) : stochastic_(stochastic) {}
  RoundingReport apply(QuantSim& sim, const data::Loader& calib,
                       const RoundingOptions& options) const override {
    ReconstructionOptions r;
    r.lr = 5e-3;
    bool stochastic = stochastic_;
    return reconstruct(
        sim, calib, options, r,
        [stochastic] { return std::make_unique<AttentionVariable>(stochastic); },
        stochastic ? "attention-stochastic" : "attention");
  }

 private:
  bool stochastic_;
};

class AttentionStochastic : public Attention {
 public:
  AttentionStochastic() : Attention(true) {}
};

MPQ_REGISTER(Rounding, "attention", Attention);
MPQ_REGISTER(Rounding, "attention-stochastic", AttentionStochastic);

}  // namespace

std::unique_ptr<SoftRounding> attention_variable(bool stochastic) {
  return std::make_unique<AttentionVariable>(stochastic);
}
}  // namespace mpq::ptq
