// adaround (Nagel et al. 2020): each weight rounds down or up, W̃ = s·clip(⌊W/s⌋ + h(V), qmin,
// qmax) with the rectified sigmoid h(V) = clip(σ(V)(ζ − γ) + γ, 0, 1), ζ = 1.1, γ = −0.1, V
// initialised so that h(V) = W/s − ⌊W/s⌋. Loss: layer reconstruction + λ·Σ(1 − |2h(V) − 1|^β)
// with λ = 0.01, no regulariser for the first 20% of iterations, then β annealed linearly from
// 20 to 2; the result is ⌊W/s⌋ + [h(V) ≥ 0.5].
#include "mpq/ptq/reconstruction.h"

namespace mpq::ptq {

using quant::IntRange;
using quant::QuantSim;

namespace {

constexpr double kZeta = 1.1, kGamma = -0.1, kLambda = 0.01, kWarmup = 0.2;

class AdaRoundVariable : public SoftRounding {
 public:
  at::Tensor init(const at::Tensor& w_over_s, IntRange range) override {
    range_ = range;
    floor_ = w_over_s.floor();
    at::Tensor rest = (w_over_s - floor_).clamp(1e-4, 1 - 1e-4);
    return -at::log((kZeta - kGamma) / (rest - kGamma) - 1);
  }
  at::Tensor soft(const at::Tensor& v, double) override {
    return (floor_ + h(v)).clamp(range_.qmin, range_.qmax);
  }
  at::Tensor regularizer(const at::Tensor& v, double t) override {
    if (t < kWarmup) return at::zeros({});
    double beta = 2 + (20 - 2) * (1 - (t - kWarmup) / (1 - kWarmup));
    return kLambda * (1 - (2 * h(v) - 1).abs().pow(beta)).sum();
  }
  at::Tensor hard(const at::Tensor& v) override {
    return (floor_ + (h(v) >= 0.5).to(at::kFloat)).clamp(range_.qmin, range_.qmax).to(at::kChar);
  }

 private:
  static at::Tensor h(const at::Tensor& v) {
    return (at::sigmoid(v) * (kZeta - kGamma) + kGamma).clamp(0, 1);
  }
  IntRange range_;
  at::Tensor floor_;
};

class AdaRound : public Rounding {
 public:
  RoundingReport apply(QuantSim& sim, const data::Loader& calib,
                       const RoundingOptions& options) const override {
    ReconstructionOptions r;
    r.lr = 1e-3;
    return reconstruct(
        sim, calib, options, r, [] { return std::make_unique<AdaRoundVariable>(); }, "adaround");
  }
};

MPQ_REGISTER(Rounding, "adaround", AdaRound);

}  // namespace

std::unique_ptr<SoftRounding> adaround_variable() { return std::make_unique<AdaRoundVariable>(); }
}  // namespace mpq::ptq
