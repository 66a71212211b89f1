// After lowering: weight repacking, then finish_program's passes (class Finisher, in order):
// the scales of real tensors, the fusions (Conv [-> Relu | Clip] -> QuantizeLinear, output
// clamps, slice chains, residual block ends) and the requantization constants.
#include "program.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace mpq::runtime {
namespace {

// Stores `value` at `bits` and returns the magnitude of the value stored (sign-extended).
int put_bits(uint8_t* buf, int64_t index, int bits, int value) {
  uint32_t v = static_cast<uint32_t>(value) & ((1u << bits) - 1);
  int64_t bit = index * bits;
  for (int b = 0; b < bits; ++b, ++bit)
    if (v >> b & 1) buf[bit >> 3] |= static_cast<uint8_t>(1u << (bit & 7));
  const int stored = static_cast<int>(v ^ (1u << (bits - 1))) - (1 << (bits - 1));
  return stored < 0 ? -stored : stored;
}

int round_up(int v, int m) { return (v + m - 1) / m * m; }

bool identity_scale(double a, double b) { return a == b; }

// The step's real clamp [lo, hi] in units of `scale`, within int32 (a bound beyond int32, or one
// a zero or huge scale makes infinite or NaN, is no bound on that side).
void set_clamp(Step& st, double scale) {
  const double lim = std::numeric_limits<int32_t>::max();
  const auto units = [&](double v, int32_t unbounded) {
    const double u = std::nearbyint(v / scale);
    return std::isfinite(v) && u >= -lim && u <= lim ? static_cast<int32_t>(u) : unbounded;
  };
  st.ilo = units(st.lo, std::numeric_limits<int32_t>::min());
  st.ihi = units(st.hi, std::numeric_limits<int32_t>::max());
}

}  // namespace

bool make_dyadic(double multiplier, double offset, Rescale* out) {
  if (multiplier == 0) {
    *out = {0, 0, std::llround(offset)};
    return true;
  }
  if (!(multiplier > 0) || !std::isfinite(multiplier) || !std::isfinite(offset)) return false;
  int e = 0;
  double mant = std::frexp(multiplier, &e);  // multiplier = mant·2^e, mant in [0.5, 1)
  int64_t m = std::llround(std::ldexp(mant, 31));
  if (m == (int64_t{1} << 31)) m >>= 1, ++e;
  int shift = 31 - e;
  while (shift > 62 || std::fabs(offset) * std::ldexp(1.0, shift) > std::ldexp(1.0, 61)) {
    m = (m + 1) >> 1;
    --shift;
  }
  if (shift < 1) return false;
  out->mult = static_cast<int32_t>(m);
  out->shift = shift;
  out->add = std::llround(std::ldexp(offset, shift)) + (int64_t{1} << (shift - 1));
  return true;
}

void pack_layer(ConvLayer& L, const std::vector<int8_t>& q) {
  const int taps = L.kh * L.kw;
  L.icp = round_up(L.ic, 4);
  const int channels64 = round_up(L.oc, 64);
  L.zpcorr.assign(channels64, 0);
  L.w_max = 0;
  if (L.kind == ConvKind::kDwconv) {
    const int64_t values = static_cast<int64_t>(taps) * channels64;
    L.packed.assign(values * L.bits / 8 + kWeightTail, 0);
    for (int c = 0; c < L.oc; ++c)
      for (int t = 0; t < taps; ++t) {
        int v = q[static_cast<int64_t>(c) * taps + t];
        L.w_max = std::max(
            L.w_max, put_bits(L.packed.data(), static_cast<int64_t>(t) * channels64 + c, L.bits, v));
        L.zpcorr[c] += L.in_zp * v;
      }
    return;
  }
  const int64_t k = static_cast<int64_t>(taps) * L.icp, groups = k / 4;
  const int blocks = (L.oc + kBlock - 1) / kBlock;
  L.packed.assign(blocks * groups * group_bytes(L.bits) + kWeightTail, 0);
  for (int c = 0; c < L.oc; ++c)
    for (int ci = 0; ci < L.ic; ++ci)
      for (int t = 0; t < taps; ++t) {
        int v = q[(static_cast<int64_t>(c) * L.ic + ci) * taps + t];
        int64_t kk = static_cast<int64_t>(t) * L.icp + ci;
        int64_t index = ((c / kBlock) * groups + kk / 4) * 64 + (c % kBlock) * 4 + kk % 4;
        L.w_max = std::max(L.w_max, put_bits(L.packed.data(), index, L.bits, v));
        L.zpcorr[c] += L.in_zp * v;
      }
}

namespace {

// Who reads and who writes each tensor, as lowered (fusions later mark steps dead or move a
// step's output; these lists stay those of the lowered program).
struct Links {
  std::vector<std::vector<int>> consumers;
  std::vector<int> producer;
  explicit Links(const Program& p) : consumers(p.tensors.size()), producer(p.tensors.size(), -1) {
    const auto& steps = p.steps;
    for (size_t s = 0; s < steps.size(); ++s) {
      if (steps[s].in0 >= 0) consumers[steps[s].in0].push_back(static_cast<int>(s));
      for (int in : steps[s].more) consumers[in].push_back(static_cast<int>(s));
      if (steps[s].in1 >= 0 && steps[s].in1 != steps[s].in0)
        consumers[steps[s].in1].push_back(static_cast<int>(s));
      producer[steps[s].out] = static_cast<int>(s);
    }
  }
};

// The passes of finish_program, in order. Each returns an error for the node it cannot finish.
class Finisher {
 public:
  Finisher(Program* p, const std::string& path)
      : p_(*p), T_(p->tensors), S_(p->steps), links_(*p), path_(path) {}

  Status run() {
    assign_real_scales();
    if (Status s = fuse_conv_requantize(); !s.ok()) return s;
    fuse_output_clamps();
    fuse_slice_chains();
    if (Status s = set_rescales(); !s.ok()) return s;
    fuse_residual_ends();
    return check_and_set_output();
  }

 private:
  Status bad(const Step& s, const std::string& what) const {
    return Status{StatusCode::kUnsupported, path_ + ": node '" + s.name + "': " + what};
  }
  const std::vector<int>& readers(int tensor) const { return links_.consumers[tensor]; }

  void assign_real_scales();
  Status fuse_conv_requantize();
  void fuse_output_clamps();
  void fuse_slice_chains();
  Status set_rescales();
  void fuse_residual_ends();
  Status check_and_set_output();

  Program& p_;
  std::vector<TensorDesc>& T_;  // p_.tensors
  std::vector<Step>& S_;        // p_.steps
  const Links links_;
  const std::string& path_;
};

// The scale of an affine step's input: the channel of largest |scale| maps one input step to 32
// output steps (its output keeps 2^21 levels over the range of the quantizer reading it), and
// a channel of a 256x smaller scale, whose inputs are that much larger, still fits in int32.
double affine_input_scale(const Step& st, double out_scale) {
  double a = 0;
  for (double v : st.channel_scale) a = std::max(a, std::fabs(v));
  return a > 0 ? out_scale * 32 / a : out_scale;
}

// Scales of real tensors, last step first: a tensor spreads the range of a quantizer reading it
// over 2^26 levels (32x headroom below 2^31), or takes the scale of a real step reading it
// (global pooling: times the map's size up to 64, so one value may be 2048 times the range of
// the means before it saturates; the whole map's size made a squeeze-excite input on a 64x64
// map 4096 times coarser than its mean's quantizer, and its product with the gate flipped 0.5 %
// of the next quantizer's values); with several readers, the finest. Coarser real tensors let the
// rounding of a residual stream, block after block, flip activations that the simulation (float)
// keeps.
void Finisher::assign_real_scales() {
  constexpr double kRealLevels = 67108864.0;
  constexpr int kGapHeadroom = 64;
  std::vector<bool> known(T_.size(), false);
  for (size_t t = 0; t < T_.size(); ++t) known[t] = T_[t].kind == TensorKind::kU8;
  for (int s = static_cast<int>(S_.size()) - 1; s >= 0; --s) {
    int t = S_[s].out;
    if (known[t]) continue;
    // The coarsest of the readers' scales: the finest would overflow int32 where a tensor
    // feeds quantizers of very different steps (a feature map and its pooled mean).
    bool found = false;
    for (int c : readers(t)) {
      const Step& u = S_[c];
      double candidate = 0;
      if (u.op == StepOp::kRequantize)
        candidate = T_[u.out].scale * std::max(1, T_[u.out].hi - T_[u.out].lo) / kRealLevels;
      else if (u.op == StepOp::kGap && known[u.out])  // (the sum itself is in int64)
        candidate = T_[u.out].scale * std::min(T_[t].h * T_[t].w, kGapHeadroom);
      else if (u.op == StepOp::kAvgPool && known[u.out])  // the same, over a window
        candidate = T_[u.out].scale * u.pool_kernel[0] * u.pool_kernel[1];
      else if (u.op == StepOp::kAffine && known[u.out])
        candidate = affine_input_scale(u, T_[u.out].scale);
      else if (u.op != StepOp::kConv && u.op != StepOp::kMul && u.op != StepOp::kUnary &&
               known[u.out])  // (a product or a function takes its inputs at any scale)
        candidate = T_[u.out].scale;
      if (candidate > 0) {
        T_[t].scale = found ? std::min(T_[t].scale, candidate) : candidate;
        found = true;
      }
    }
    if (!found) {
      const Step& st = S_[s];
      if (st.op == StepOp::kConv) {
        // Read by a product or a function only: the finest scale that holds every output the
        // layer can give (per-channel weight scales make one step of the largest channel's
        // accumulator too coarse for the others).
        const double bound = st.conv->out_bound;
        T_[t].scale = bound > 0 && std::isfinite(bound) ? bound / 1073741824.0 : 1.0 / 256;
      } else {
        T_[t].scale = 1.0 / kRealLevels;
      }
    }
    known[t] = true;
  }
}

// Conv [-> Clip] -> Requantize, each the only reader of the one before: one conv writing uint8.
Status Finisher::fuse_conv_requantize() {
  const int output = p_.output;
  for (Step& st : S_) {
    if (st.op != StepOp::kConv || st.out == output) continue;
    if (readers(st.out).size() != 1) continue;
    Step* next = &S_[readers(st.out)[0]];
    double lo = -INFINITY, hi = INFINITY;
    Step* clip = nullptr;
    if (next->op == StepOp::kClip && next->out != output && readers(next->out).size() == 1) {
      clip = next;
      lo = clip->lo, hi = clip->hi;
      next = &S_[readers(next->out)[0]];
    }
    if (next->op != StepOp::kRequantize) continue;
    TensorDesc& u = T_[next->out];
    // The clamp in output steps (bounded before the cast: a crafted clip may be huge).
    auto steps_of = [&](double v) { return std::clamp(std::nearbyint(v / u.scale), -1e6, 1e6); };
    if (std::isfinite(lo)) u.lo = std::max<int>(u.lo, static_cast<int>(steps_of(lo)) + u.zp);
    if (std::isfinite(hi)) u.hi = std::min<int>(u.hi, static_cast<int>(steps_of(hi)) + u.zp);
    if (u.lo > u.hi) return bad(st, "the clamp after this layer leaves no value");
    if (clip) clip->dead = true;
    next->dead = true;
    st.out = next->out;
  }
  return Status::Ok();
}

// A Relu/Clip that is the only reader of an int32 conv, add or affine step becomes its output
// clamp.
void Finisher::fuse_output_clamps() {
  const int output = p_.output;
  for (Step& st : S_) {
    if (st.dead || (st.op != StepOp::kConv && st.op != StepOp::kAdd && st.op != StepOp::kAffine) ||
        st.out == output || T_[st.out].kind != TensorKind::kI32)
      continue;
    const auto& r = readers(st.out);
    if (r.size() != 1 || S_[r[0]].op != StepOp::kClip || S_[r[0]].dead ||
        S_[r[0]].out == output)  // the output is written raw, without a clamp
      continue;
    Step& clip = S_[r[0]];
    if (!identity_scale(T_[st.out].scale, T_[clip.out].scale)) continue;
    st.lo = clip.lo, st.hi = clip.hi;
    st.out = clip.out;
    clip.dead = true;
  }
}

// Slice -> Slice [-> Pad of channels] (the option-A shortcut) runs as one gather.
void Finisher::fuse_slice_chains() {
  for (Step& st : S_) {
    if (st.dead || st.op != StepOp::kSlice || st.out == p_.output) continue;
    if (readers(st.out).size() != 1) continue;
    Step& next = S_[readers(st.out)[0]];
    if (next.dead || next.in0 != st.out) continue;
    auto steps_fit = [&] {
      for (int a = 0; a < 3; ++a)
        if (static_cast<int64_t>(next.slice_step[a]) * st.slice_step[a] > kMaxSide ||
            st.slice_begin[a] + static_cast<int64_t>(next.slice_begin[a]) * st.slice_step[a] >
                kMaxSide)
          return false;
      return true;
    };
    if (next.op == StepOp::kSlice && next.pad_before[0] == 0 && next.pad_after[0] == 0 &&
        steps_fit()) {
      for (int a = 0; a < 3; ++a) {
        next.slice_begin[a] = st.slice_begin[a] + next.slice_begin[a] * st.slice_step[a];
        next.slice_step[a] *= st.slice_step[a];
      }
      next.in0 = st.in0;
      next.pad_before[0] = st.pad_before[0], next.pad_after[0] = st.pad_after[0];
      st.dead = true;
    } else if (next.op == StepOp::kPad && next.pad_before[1] == 0 && next.pad_after[1] == 0 &&
               next.pad_before[2] == 0 && next.pad_after[2] == 0 && st.pad_before[0] == 0 &&
               st.pad_after[0] == 0) {
      st.pad_before[0] = next.pad_before[0], st.pad_after[0] = next.pad_after[0];
      st.out = next.out;
      next.dead = true;
    }
  }
}

// Requantization constants: a conv's per-channel multipliers, every other step's rescale of its
// inputs to its output's scale, and the clamps in output units.
Status Finisher::set_rescales() {
  const int output = p_.output;
  for (Step& st : S_) {
    if (st.dead) continue;
    const TensorDesc& out = T_[st.out];
    if (st.op == StepOp::kConv) {
      ConvLayer& L = *st.conv;
      const int padded = static_cast<int>(L.zpcorr.size());
      L.mult.assign(padded, 0), L.shift.assign(padded, 0), L.add.assign(padded, 0);
      if (st.out == output) {  // raw accumulators, made float at the end
        p_.out_scale.resize(L.oc), p_.out_bias.resize(L.oc);
        for (int c = 0; c < L.oc; ++c) {
          p_.out_scale[c] = static_cast<float>(L.in_scale * L.w_scale[c]);
          p_.out_bias[c] = static_cast<float>(L.bias[c]);
        }
        continue;
      }
      set_clamp(st, out.scale);
      for (int c = 0; c < L.oc; ++c) {
        Rescale d;
        if (!make_dyadic(L.in_scale * L.w_scale[c] / out.scale, L.bias[c] / out.scale, &d))
          return bad(st, "channel " + std::to_string(c) + ": requantization multiplier " +
                             std::to_string(L.in_scale * L.w_scale[c] / out.scale) +
                             " is out of the fixed-point range");
        L.mult[c] = d.mult, L.shift[c] = d.shift, L.add[c] = d.add;
      }
      continue;
    }
    auto rescale = [&](int in, double extra, Rescale* d) {
      double r = T_[in].scale / out.scale * extra;
      if (r == 1.0) {
        *d = Rescale{};
        return true;
      }
      return make_dyadic(r, 0, d);
    };
    bool ok = true;
    switch (st.op) {
      case StepOp::kRequantize:
      case StepOp::kSlice:
      case StepOp::kPad:
      case StepOp::kMaxPool:
      case StepOp::kShuffle:
      case StepOp::kClip:
        ok = rescale(st.in0, 1.0, &st.rq0);
        if (st.op == StepOp::kClip) set_clamp(st, out.scale);
        break;
      case StepOp::kAdd:
        ok = rescale(st.in0, 1.0, &st.rq0) && rescale(st.in1, 1.0, &st.rq1);
        set_clamp(st, out.scale);
        break;
      case StepOp::kGap:
        ok = rescale(st.in0, 1.0 / (T_[st.in0].h * T_[st.in0].w), &st.rq0);
        break;
      case StepOp::kAvgPool:
        ok = rescale(st.in0, 1.0 / (st.pool_kernel[0] * st.pool_kernel[1]), &st.rq0);
        break;
      case StepOp::kMul:
        ok = make_dyadic(T_[st.in0].scale * T_[st.in1].scale / out.scale, 0, &st.rq0);
        break;
      case StepOp::kAffine: {
        const double r = T_[st.in0].scale / out.scale;
        const size_t channels = st.channel_scale.size();
        st.channel_rq.resize(channels);
        st.channel_negate.resize(channels);
        for (size_t c = 0; c < channels && ok; ++c) {
          st.channel_negate[c] = st.channel_scale[c] < 0;
          ok = make_dyadic(std::fabs(st.channel_scale[c]) * r, st.channel_shift[c] / out.scale,
                           &st.channel_rq[c]);
        }
        set_clamp(st, out.scale);
        break;
      }
      case StepOp::kConcat:
        ok = rescale(st.in0, 1.0, &st.rq0);
        st.more_rq.resize(st.more.size());
        for (size_t i = 0; i < st.more.size(); ++i)
          ok = ok && rescale(st.more[i], 1.0, &st.more_rq[i]);
        break;
      default:
        break;
    }
    if (!ok) return bad(st, "a rescale factor is out of the fixed-point range");
  }
  return Status::Ok();
}

// A residual block's end: Conv -> Add [-> Relu] -> {Requantize, ...} runs as one conv whose
// epilogue adds the rescaled residual, clamps, and writes the int32 sum and its uint8 copy.
void Finisher::fuse_residual_ends() {
  const int output = p_.output;
  for (size_t s = 0; s < S_.size(); ++s) {
    Step& st = S_[s];
    if (st.dead || st.op != StepOp::kConv || st.conv->kind != ConvKind::kConv || st.out == output ||
        T_[st.out].kind != TensorKind::kI32)
      continue;
    const auto& r = readers(st.out);
    if (r.size() == 1 && S_[r[0]].op == StepOp::kAdd && !S_[r[0]].dead) {
      Step& add = S_[r[0]];
      const bool first = add.in0 == st.out;
      const int other = first ? add.in1 : add.in0;
      const Rescale& mine = first ? add.rq0 : add.rq1;
      const bool before = links_.producer[other] < static_cast<int>(s);
      if (other != st.out && before && mine.mult == 1 && mine.shift == 0 && mine.add == 0 &&
          add.out != output) {
        st.residual = other;
        st.res_rq = first ? add.rq1 : add.rq0;
        st.ilo = add.ilo, st.ihi = add.ihi;
        st.out = add.out;
        add.dead = true;
      }
    }
    if (st.out == output) continue;
    for (int c : readers(st.out)) {
      Step& rq = S_[c];
      if (rq.op == StepOp::kRequantize && !rq.dead && rq.in0 == st.out) {
        st.out2 = rq.out;
        st.out2_rq = rq.rq0;
        rq.dead = true;
        break;
      }
    }
  }
}

// What the kernels need of the finished program, and the float scales of the output.
Status Finisher::check_and_set_output() {
  // A fully connected layer reads its input as rows without borders.
  for (const Step& st : S_)
    if (!st.dead && st.op == StepOp::kConv && st.conv->kind == ConvKind::kFc &&
        T_[st.in0].border != 0)
      return bad(st, "the input of this fully connected layer is also read by a padded conv");
  const TensorDesc& o = T_[p_.output];
  if (o.h != 1 || o.w != 1)
    return Status{StatusCode::kUnsupported,
                  path_ + ": the output is a feature map; the runtime returns class scores"};
  if (p_.out_scale.empty()) {
    p_.out_scale.assign(o.c, static_cast<float>(o.scale));
    p_.out_bias.assign(o.c, 0.0f);
  }
  return Status::Ok();
}

}  // namespace

Status finish_program(Program* p, const std::string& path) { return Finisher(p, path).run(); }

}  // namespace mpq::runtime
