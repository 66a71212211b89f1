// The integer runtime's executor: buffers, work splitting over the cores, and the steps that
// are not kernels (input quantization, requantize, add, clip, pooling, slice, pad).
#include "mpq/runtime/runtime.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "mpq/core/error.h"  // one_line (header only)
#include "program.h"

namespace mpq::runtime {
namespace {

// A 64-byte aligned byte buffer.
class Buffer {
 public:
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { std::free(data_); }
  // False when the memory cannot be had (the buffer is then empty).
  bool resize(size_t bytes) {
    if (bytes <= size_) return true;
    std::free(data_);
    size_ = (bytes + 63) / 64 * 64;
    data_ = static_cast<uint8_t*>(std::aligned_alloc(64, size_));
    if (!data_) size_ = 0;
    return data_ != nullptr;
  }
  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

int32_t clamp32(int64_t v) {
  return static_cast<int32_t>(std::clamp<int64_t>(v, std::numeric_limits<int32_t>::min(),
                                                  std::numeric_limits<int32_t>::max()));
}

bool identity(const Rescale& d) { return d.mult == 1 && d.shift == 0 && d.add == 0; }

}  // namespace

// Tensor buffers for one stream of images: the whole batch (one workspace, the steps split
// over the cores) or one thread's sub-batches (a workspace per thread).
struct Workspace {
  std::vector<std::unique_ptr<Buffer>> slots;  // shared by tensors whose lives do not overlap
  std::vector<uint8_t*> data;                  // per tensor (nullptr: fused away)
  int batch = 0;
  int scratch_base = 0;  // scratch buffer of inner thread i: scratch_base + i
};

// Which buffer slot each tensor lives in: tensors whose lives (producing step to last reading
// step) do not overlap share a slot, best fit by size. A uint8 tensor with a border or padded
// channels that shares its slot is refilled with zp before its producer writes it.
struct Plan {
  std::vector<int> slot;            // per tensor, -1: not materialized
  std::vector<int64_t> slot_bytes;  // per image
  std::vector<bool> refill;         // per tensor
};

int64_t tensor_bytes(const TensorDesc& d) {
  return d.elements() * (d.kind == TensorKind::kU8 ? 1 : 4);
}

Plan plan_buffers(const Program& p, bool reuse) {
  const int steps = static_cast<int>(p.steps.size());
  std::vector<int> first(p.tensors.size(), -1), last(p.tensors.size(), -1);
  for (int s = 0; s < steps; ++s) {
    const Step& st = p.steps[s];
    if (st.dead) continue;
    for (int t : {st.out, st.out2})
      if (t >= 0 && first[t] < 0) first[t] = s;
    for (int t : {st.in0, st.in1, st.residual})
      if (t >= 0) last[t] = std::max(last[t], s);
    for (int t : st.more) last[t] = std::max(last[t], s);
  }
  last[p.output] = steps;
  Plan plan;
  plan.slot.assign(p.tensors.size(), -1);
  plan.refill.assign(p.tensors.size(), false);
  std::vector<int> free_slots;
  std::vector<int> holders;  // tensors holding a slot right now
  for (int s = 0; s < steps; ++s) {
    const Step& st = p.steps[s];
    if (st.dead) continue;
    for (int t : {st.out, st.out2}) {
      if (t < 0 || first[t] != s) continue;
      const int64_t need = tensor_bytes(p.tensors[t]);
      int best = -1;
      for (size_t i = 0; reuse && i < free_slots.size(); ++i) {
        int c = free_slots[i];
        bool fits = plan.slot_bytes[c] >= need;
        if (best < 0 ||
            (fits &&
             (plan.slot_bytes[best] < need || plan.slot_bytes[c] < plan.slot_bytes[best])) ||
            (!fits && plan.slot_bytes[best] < need && plan.slot_bytes[c] > plan.slot_bytes[best]))
          best = static_cast<int>(i);
      }
      int slot;
      if (best >= 0) {
        slot = free_slots[best];
        free_slots.erase(free_slots.begin() + best);
        plan.slot_bytes[slot] = std::max(plan.slot_bytes[slot], need);
      } else {
        slot = static_cast<int>(plan.slot_bytes.size());
        plan.slot_bytes.push_back(need);
      }
      plan.slot[t] = slot;
      holders.push_back(t);
    }
    for (size_t i = 0; i < holders.size();) {
      if (last[holders[i]] <= s) {
        free_slots.push_back(plan.slot[holders[i]]);
        holders.erase(holders.begin() + i);
      } else {
        ++i;
      }
    }
  }
  // Every tensor of a shared slot finds it overwritten by the others on the next run.
  std::vector<int> users(plan.slot_bytes.size(), 0);
  for (int slot : plan.slot)
    if (slot >= 0) ++users[slot];
  for (size_t t = 0; t < p.tensors.size(); ++t) {
    const TensorDesc& d = p.tensors[t];
    plan.refill[t] = plan.slot[t] >= 0 && users[plan.slot[t]] > 1 && d.kind == TensorKind::kU8 &&
                     (d.border > 0 || d.cp > d.c);
  }
  return plan;
}

struct Model::Impl {
  Program p;
  Options options;
  Isa isa = Isa::kRef;
  const Kernels* k = nullptr;
  std::vector<StepInfo> info;
  std::vector<double> seconds;
  bool profiling = false;
  Plan plan;
  std::vector<Workspace> spaces;                 // [0]: whole batches; [t]: thread t's
  std::vector<std::unique_ptr<Buffer>> scratch;  // per thread
  std::vector<std::vector<double>> thread_seconds;
  size_t scratch_bytes = 64;

  bool allocate(Workspace& ws, int n);
  int64_t activation_bytes() const {  // per image
    int64_t bytes = 0;
    for (int64_t b : plan.slot_bytes) bytes += b;
    return bytes;
  }
  Status load(const std::string& path, const Options& options);
  Status run(const float* input, int n, float* output);
  void run_steps(const float* input, int n, float* output, Workspace& ws, int threads,
                 std::vector<double>* seconds);
  void run_step(const Step& st, const float* input, int n, Workspace& ws, int threads);
  void conv(const Step& st, int n, Workspace& ws, int threads);
};

// Buffers for n images; false (and nothing usable) when the memory cannot be had.
bool Model::Impl::allocate(Workspace& ws, int n) {
  if (n <= ws.batch) return true;
  ws.batch = 0;
  ws.slots.resize(plan.slot_bytes.size());
  for (size_t i = 0; i < ws.slots.size(); ++i) {
    if (!ws.slots[i]) ws.slots[i] = std::make_unique<Buffer>();
    if (!ws.slots[i]->resize(static_cast<size_t>(plan.slot_bytes[i]) * n + 64)) return false;
  }
  ws.batch = n;
  ws.data.assign(p.tensors.size(), nullptr);
  for (size_t t = 0; t < p.tensors.size(); ++t) {
    if (plan.slot[t] < 0) continue;
    ws.data[t] = ws.slots[plan.slot[t]]->data();
    const TensorDesc& d = p.tensors[t];
    if (d.kind == TensorKind::kU8 && !plan.refill[t])  // borders and padding stay zp
      std::fill_n(ws.data[t], static_cast<size_t>(tensor_bytes(d)) * n, static_cast<uint8_t>(d.zp));
  }
  return true;
}

void Model::Impl::conv(const Step& st, int n, Workspace& ws, int threads) {
  auto& data = ws.data;
  const ConvLayer& L = *st.conv;
  const TensorDesc& in = p.tensors[st.in0];
  const TensorDesc& out = p.tensors[st.out];
  OutDesc od;
  od.data = data[st.out];
  od.hp = out.hp(), od.wp = out.wp(), od.cp = out.cp, od.border = out.border;
  od.mode = out.kind == TensorKind::kU8 ? OutMode::kU8
            : st.out == p.output        ? OutMode::kRaw
                                        : OutMode::kI32;
  Requant rq{L.mult.data(), L.shift.data(), L.add.data(), out.zp, out.lo, out.hi};
  if (od.mode != OutMode::kU8) rq.zp = 0, rq.lo = st.ilo, rq.hi = st.ihi;
  int images = n, oh = L.oh, ih = in.hp(), hp = od.hp;
  if (L.kind == ConvKind::kFc) {  // the batch is the rows of one "image"
    images = 1, oh = n, ih = n, hp = n;
  }
  od.hp = hp;
  if (L.kind == ConvKind::kDwconv) {
    DwconvArgs base;
    base.in = data[st.in0];
    base.ih = ih, base.iw = in.wp(), base.icp = in.cp, base.c = L.oc;
    base.oh = L.oh, base.ow = L.ow, base.kh = L.kh, base.kw = L.kw, base.stride = L.stride;
    base.y0 = in.border - L.pad_top, base.x0 = in.border - L.pad_left;
    base.weights = L.packed.data(), base.bits = L.bits, base.zp_in = L.in_zp;
    base.in_max = std::min(255, std::max({in.hi, in.zp, 0})), base.w_max = L.w_max;
    base.rq = rq, base.out = od;
    int chunk = oh;
    while (images * ((oh + chunk - 1) / chunk) < 4 * threads && chunk > 1) chunk = (chunk + 1) / 2;
    const int per_image = (oh + chunk - 1) / chunk;
    const int items = images * per_image;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (items > 1)
    for (int item = 0; item < items; ++item) {
      DwconvArgs a = base;
      a.n = item / per_image;
      a.oh0 = (item % per_image) * chunk;
      a.oh1 = std::min(oh, a.oh0 + chunk);
      a.scratch =
          reinterpret_cast<int8_t*>(scratch[ws.scratch_base + omp_get_thread_num()]->data());
      k->dwconv(a);
    }
    return;
  }
  ConvArgs base;
  base.in = data[st.in0];
  base.ih = ih, base.iw = in.wp(), base.icp = in.cp;
  base.oh = oh, base.ow = L.ow, base.kh = L.kh, base.kw = L.kw, base.stride = L.stride;
  base.y0 = in.border - L.pad_top, base.x0 = in.border - L.pad_left;
  base.weights = L.packed.data(), base.bits = L.bits, base.oc = L.oc;
  base.zpcorr = L.zpcorr.data();
  base.in_max = std::min(255, std::max({in.hi, in.zp, 0})), base.w_max = L.w_max;
  base.rq = rq, base.out = od;
  const Kernels* kernels = k;
  if (L.kind == ConvKind::kGrouped) {
    base.group_in = L.ic, base.group_out = L.oc / L.groups;
    kernels = &kernels_for(Isa::kRef);
  }
  if (st.residual >= 0) {
    base.residual = reinterpret_cast<const int32_t*>(data[st.residual]);
    base.res_rq = st.res_rq;
  }
  if (st.out2 >= 0) {
    const TensorDesc& u = p.tensors[st.out2];
    base.out2 = {OutMode::kU8, data[st.out2], u.hp(), u.wp(), u.cp, u.border};
    base.out2_rq = st.out2_rq;
    base.out2_zp = u.zp, base.out2_lo = u.lo, base.out2_hi = u.hi;
  }
  const int blocks = (std::max(L.oc, out.cp) + kBlock - 1) / kBlock;
  const int groups = (blocks + kMaxBlocks - 1) / kMaxBlocks;
  int chunk = std::max(1, std::min(oh, 4096 / std::max(1, L.ow)));
  while (images * ((oh + chunk - 1) / chunk) * groups < 4 * threads && chunk > 1)
    chunk = (chunk + 1) / 2;
  const int per_image = (oh + chunk - 1) / chunk;
  const int items = images * per_image * groups;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (items > 1)
  for (int item = 0; item < items; ++item) {
    ConvArgs a = base;
    int g = item % groups, rest = item / groups;
    a.n = rest / per_image;
    a.oh0 = (rest % per_image) * chunk;
    a.oh1 = std::min(oh, a.oh0 + chunk);
    a.block0 = g * blocks / groups;
    a.blocks = (g + 1) * blocks / groups - a.block0;
    a.scratch = scratch[ws.scratch_base + omp_get_thread_num()]->data();
    kernels->conv(a);
  }
}

void Model::Impl::run_step(const Step& st, const float* input, int n, Workspace& ws, int threads) {
  auto& data = ws.data;
  const TensorDesc& out = p.tensors[st.out];
  switch (st.op) {
    case StepOp::kConv:
      conv(st, n, ws, threads);
      return;
    case StepOp::kQuantizeInput: {
      uint8_t* o = data[st.out];
      const float scale = static_cast<float>(out.scale);  // x / s as the simulation divides
      const int64_t hw = static_cast<int64_t>(out.h) * out.w;
      if (out.cp == 4) {  // RGB: a row of pixels at a time, every channel
        const int64_t rows = static_cast<int64_t>(n) * out.h;
#pragma omp parallel for num_threads(threads) if (rows * out.w > 16384)
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t b = r / out.h, y = r % out.h;
          QuantizeInputArgs q;
          q.c = out.c, q.pixels = out.w, q.scale = scale;
          q.zp = out.zp, q.lo = out.lo, q.hi = out.hi;
          for (int c = 0; c < out.c; ++c) q.planes[c] = input + (b * out.c + c) * hw + y * out.w;
          q.out = o + ((b * out.hp() + y + out.border) * out.wp() + out.border) * 4;
          k->quantize_input(q);
        }
        return;
      }
      const int64_t rows = static_cast<int64_t>(n) * out.c * out.h;  // input rows
#pragma omp parallel for num_threads(threads) if (rows * out.w > 16384)
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t b = r / (out.c * out.h);
        const int c = static_cast<int>(r / out.h % out.c), y = static_cast<int>(r % out.h);
        const float* src = input + r * out.w;
        uint8_t* dst = o + ((b * out.hp() + y + out.border) * out.wp() + out.border) * out.cp + c;
        QuantizeInputArgs q;
        q.scale = scale, q.zp = out.zp, q.lo = out.lo, q.hi = out.hi;
        for (int x = 0; x < out.w; ++x)
          dst[static_cast<int64_t>(x) * out.cp] = quantize_input_value(src[x], q);
      }
      return;
    }
    default:
      break;
  }
  const TensorDesc& in = p.tensors[st.in0];
  const int32_t* a = reinterpret_cast<const int32_t*>(data[st.in0]);
  const int64_t pixels = static_cast<int64_t>(n) * out.h * out.w;
  const bool many = pixels * out.c > (1 << 15);
  switch (st.op) {
    case StepOp::kRequantize: {
      uint8_t* o = data[st.out];
      const int64_t rows = static_cast<int64_t>(n) * out.h;
#pragma omp parallel for num_threads(threads) if (many)
      for (int64_t row = 0; row < rows; ++row) {
        int64_t b = row / out.h, y = row % out.h;
        RequantizeArgs r;
        r.in = a + row * out.w * in.c;
        r.out = o + ((b * out.hp() + y + out.border) * out.wp() + out.border) * out.cp;
        r.pixels = out.w, r.c = out.c, r.out_stride = out.cp;
        r.rq = st.rq0, r.zp = out.zp, r.lo = out.lo, r.hi = out.hi;
        k->requantize(r);
      }
      return;
    }
    case StepOp::kClip: {
      int32_t* o = reinterpret_cast<int32_t*>(data[st.out]);
      const int64_t count = pixels * out.c;
      const bool id = identity(st.rq0);
#pragma omp parallel for num_threads(threads) if (many)
      for (int64_t i = 0; i < count; ++i) {
        int32_t v = id ? a[i] : clamp32(st.rq0.apply(a[i]));
        o[i] = std::clamp(v, st.ilo, st.ihi);
      }
      return;
    }
    case StepOp::kAdd: {
      const int32_t* b = reinterpret_cast<const int32_t*>(data[st.in1]);
      int32_t* o = reinterpret_cast<int32_t*>(data[st.out]);
      const int64_t count = pixels * out.c;
      const int parts = many ? threads : 1;
#pragma omp parallel for num_threads(threads) if (parts > 1)
      for (int part = 0; part < parts; ++part) {
        int64_t begin = count * part / parts / 16 * 16;
        int64_t end = part + 1 == parts ? count : count * (part + 1) / parts / 16 * 16;
        AddArgs args;
        args.a = a + begin, args.b = b + begin, args.out = o + begin, args.count = end - begin;
        args.rq0 = st.rq0, args.rq1 = st.rq1, args.lo = st.ilo, args.hi = st.ihi;
        k->add(args);
      }
      return;
    }
    case StepOp::kGap: {
      int32_t* o = reinterpret_cast<int32_t*>(data[st.out]);
      const int hw = in.h * in.w;
      for (int b = 0; b < n; ++b)
        for (int c = 0; c < in.c; ++c) {
          int64_t sum = 0;
          for (int i = 0; i < hw; ++i) sum += a[(static_cast<int64_t>(b) * hw + i) * in.c + c];
          o[static_cast<int64_t>(b) * in.c + c] = clamp32(st.rq0.apply(sum));
        }
      return;
    }
    case StepOp::kSlice:
    case StepOp::kPad: {
      // Whole channel runs per pixel: a copy (or a rescale) and zero fill.
      int32_t* o = reinterpret_cast<int32_t*>(data[st.out]);
      const bool id = identity(st.rq0);
      const bool slice = st.op == StepOp::kSlice;
#pragma omp parallel for num_threads(threads) if (many)
      for (int64_t px = 0; px < pixels; ++px) {
        int64_t b = px / (out.h * out.w);
        int y = static_cast<int>(px / out.w % out.h), x = static_cast<int>(px % out.w);
        int32_t* dst = o + px * out.c;
        int sy = slice ? st.slice_begin[1] + y * st.slice_step[1] : y - st.pad_before[1];
        int sx = slice ? st.slice_begin[2] + x * st.slice_step[2] : x - st.pad_before[2];
        if (sy < 0 || sy >= in.h || sx < 0 || sx >= in.w) {
          std::fill_n(dst, out.c, 0);
          continue;
        }
        const int32_t* src = a + ((b * in.h + sy) * in.w + sx) * in.c;
        // A slice may carry the channel padding of a Pad fused into it.
        int c0 = st.pad_before[0];
        int count = slice ? out.c - st.pad_before[0] - st.pad_after[0] : in.c;
        int step = slice ? st.slice_step[0] : 1;
        if (slice) src += st.slice_begin[0];
        std::fill_n(dst, c0, 0);
        for (int c = 0; c < count; ++c) {
          int32_t v = src[c * step];
          dst[c0 + c] = id ? v : clamp32(st.rq0.apply(v));
        }
        std::fill_n(dst + c0 + count, out.c - c0 - count, 0);
      }
      return;
    }
    case StepOp::kMaxPool: {
      // The maximum of each window's integers, then the (monotone) rescale to the output's.
      int32_t* o = reinterpret_cast<int32_t*>(data[st.out]);
      const bool id = identity(st.rq0);
#pragma omp parallel for num_threads(threads) if (many)
      for (int64_t px = 0; px < pixels; ++px) {
        const int64_t b = px / (out.h * out.w);
        const int y0 = static_cast<int>(px / out.w % out.h) * st.pool_stride[0] - st.pad_before[1];
        const int x0 = static_cast<int>(px % out.w) * st.pool_stride[1] - st.pad_before[2];
        int32_t* dst = o + px * out.c;
        std::fill_n(dst, out.c, INT32_MIN);
        for (int y = std::max(y0, 0); y < std::min(y0 + st.pool_kernel[0], in.h); ++y)
          for (int x = std::max(x0, 0); x < std::min(x0 + st.pool_kernel[1], in.w); ++x) {
            const int32_t* src = a + ((b * in.h + y) * in.w + x) * in.c;
            for (int c = 0; c < out.c; ++c) dst[c] = std::max(dst[c], src[c]);
          }
        if (!id)
          for (int c = 0; c < out.c; ++c) dst[c] = clamp32(st.rq0.apply(dst[c]));
      }
      return;
    }
    case StepOp::kAvgPool: {
      // Each window's integer sum, rescaled by 1 / (kernel area); pads add zeros.
      int32_t* o = reinterpret_cast<int32_t*>(data[st.out]);
#pragma omp parallel for num_threads(threads) if (many)
      for (int64_t px = 0; px < pixels; ++px) {
        const int64_t b = px / (out.h * out.w);
        const int y0 = static_cast<int>(px / out.w % out.h) * st.pool_stride[0] - st.pad_before[1];
        const int x0 = static_cast<int>(px % out.w) * st.pool_stride[1] - st.pad_before[2];
        const int y1 = std::min(y0 + st.pool_kernel[0], in.h);
        const int x1 = std::min(x0 + st.pool_kernel[1], in.w);
        int32_t* dst = o + px * out.c;
        for (int c = 0; c < out.c; ++c) {
          int64_t sum = 0;
          for (int y = std::max(y0, 0); y < y1; ++y)
            for (int x = std::max(x0, 0); x < x1; ++x)
              sum += a[((b * in.h + y) * in.w + x) * in.c + c];
          dst[c] = clamp32(st.rq0.apply(sum));
        }
      }
      return;
    }
    case StepOp::kMul: {
      // The int64 product of the integers, rescaled (in1: one factor per channel when 1x1).
      int32_t* o = reinterpret_cast<int32_t*>(data[st.out]);
      const int32_t* b = reinterpret_cast<const int32_t*>(data[st.in1]);
      const TensorDesc& tb = p.tensors[st.in1];
      const bool per_channel = tb.h * tb.w == 1 && in.h * in.w != 1;
#pragma omp parallel for num_threads(threads) if (many)
      for (int64_t px = 0; px < pixels; ++px) {
        const int32_t* x = a + px * in.c;
        const int32_t* y = per_channel ? b + px / (out.h * out.w) * tb.c : b + px * tb.c;
        int32_t* dst = o + px * out.c;
        for (int c = 0; c < out.c; ++c)
          dst[c] = clamp32(st.rq0.apply(static_cast<int64_t>(x[c]) * y[c]));
      }
      return;
    }
    case StepOp::kUnary: {
      // In double on the real value, rounded to the output's integers.
      int32_t* o = reinterpret_cast<int32_t*>(data[st.out]);
      const double s_in = in.scale, s_out = out.scale;
      const int64_t count = pixels * out.c;
#pragma omp parallel for num_threads(threads) if (many)
      for (int64_t i = 0; i < count; ++i) {
        const double v = s_in * a[i];
        double y = 0;
        switch (st.unary) {
          case UnaryOp::kSigmoid:
            y = 1 / (1 + std::exp(-v));
            break;
          case UnaryOp::kHardSigmoid:
            y = std::clamp(st.alpha * v + st.beta, 0.0, 1.0);
            break;
        }
        const double r = std::nearbyint(y / s_out);
        o[i] = r >= INT32_MAX ? INT32_MAX : r <= INT32_MIN ? INT32_MIN : static_cast<int32_t>(r);
      }
      return;
    }
    case StepOp::kShuffle: {
      int32_t* o = reinterpret_cast<int32_t*>(data[st.out]);
      const bool id = identity(st.rq0);
#pragma omp parallel for num_threads(threads) if (many)
      for (int64_t px = 0; px < pixels; ++px) {
        const int32_t* src = a + px * in.c;
        int32_t* dst = o + px * out.c;
        for (int c = 0; c < out.c; ++c) {
          const int32_t v = src[st.channel_map[c]];
          dst[c] = id ? v : clamp32(st.rq0.apply(v));
        }
      }
      return;
    }
    case StepOp::kAffine: {
      // Per channel: the rescale of ±r (the sign of the channel's scale) plus its shift, clamped.
      int32_t* o = reinterpret_cast<int32_t*>(data[st.out]);
#pragma omp parallel for num_threads(threads) if (many)
      for (int64_t px = 0; px < pixels; ++px) {
        const int32_t* src = a + px * in.c;
        int32_t* dst = o + px * out.c;
        for (int c = 0; c < out.c; ++c) {
          const int64_t v = st.channel_negate[c] ? -static_cast<int64_t>(src[c]) : src[c];
          dst[c] =
              static_cast<int32_t>(std::clamp<int64_t>(st.channel_rq[c].apply(v), st.ilo, st.ihi));
        }
      }
      return;
    }
    case StepOp::kConcat: {
      // Each input's channels, rescaled to the output's scale, side by side in every pixel.
      int32_t* o = reinterpret_cast<int32_t*>(data[st.out]);
      int c0 = 0;
      for (size_t i = 0; i <= st.more.size(); ++i) {
        const int t = i == 0 ? st.in0 : st.more[i - 1];
        const Rescale& rq = i == 0 ? st.rq0 : st.more_rq[i - 1];
        const int32_t* src = reinterpret_cast<const int32_t*>(data[t]);
        const int c = p.tensors[t].c;
        const bool id = identity(rq);
#pragma omp parallel for num_threads(threads) if (many)
        for (int64_t px = 0; px < pixels; ++px) {
          const int32_t* from = src + px * c;
          int32_t* to = o + px * out.c + c0;
          for (int k = 0; k < c; ++k) to[k] = id ? from[k] : clamp32(rq.apply(from[k]));
        }
        c0 += c;
      }
      return;
    }
    default:
      return;
  }
}

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;

// Nothing but a Status leaves the API: what the standard library throws (out of memory, a
// length error) becomes one.
template <typename F>
Status guarded(const std::string& what, F&& f) {
  try {
    Status s = f();
    s.message = one_line(s.message);  // names from the file may hold newlines
    return s;
  } catch (const std::bad_alloc&) {
    return {StatusCode::kOutOfMemory, what + ": out of memory"};
  } catch (const std::exception& e) {
    return {StatusCode::kBadFile, one_line(what + ": " + e.what())};
  } catch (...) {
    return {StatusCode::kBadFile, what + ": unexpected error"};
  }
}

Status Model::load(const std::string& path, const Options& options, std::unique_ptr<Model>* out) {
  if (options.threads < 1)
    return {StatusCode::kInvalidArgument,
            "threads = " + std::to_string(options.threads) + ": must be at least 1"};
  Isa isa = options.isa == Isa::kAuto ? best_isa() : options.isa;
  if (!isa_supported(isa))
    return {StatusCode::kUnsupported,
            std::string("this CPU does not run the ") + isa_name(isa) + " kernels"};
  return guarded(path, [&]() -> Status {
    auto impl = std::make_unique<Impl>();
    impl->isa = isa;
    if (Status s = impl->load(path, options); !s.ok()) return s;
    out->reset(new Model(std::move(impl)));
    return Status::Ok();
  });
}

Status Model::Impl::load(const std::string& path, const Options& opts) {
  if (Status s = load_program(path, &p); !s.ok()) return s;
  options = opts;
  k = &kernels_for(isa);
  plan = plan_buffers(p, options.reuse_buffers);
  spaces.resize(options.threads);
  for (int t = 0; t < options.threads; ++t) spaces[t].scratch_base = t;
  thread_seconds.resize(options.threads);
  for (const Step& st : p.steps) {
    if (st.dead) continue;
    StepInfo si;
    si.name = st.name;
    const TensorDesc& out = p.tensors[st.out];
    si.output = out.kind == TensorKind::kU8 ? "u8" : st.out == p.output ? "f32" : "i32";
    switch (st.op) {
      case StepOp::kQuantizeInput:
        si.kind = "quantize";
        break;
      case StepOp::kRequantize:
        si.kind = "requantize";
        break;
      case StepOp::kClip:
        si.kind = "clip";
        break;
      case StepOp::kAdd:
        si.kind = "add";
        break;
      case StepOp::kGap:
        si.kind = "gap";
        break;
      case StepOp::kSlice:
        si.kind = "slice";
        break;
      case StepOp::kPad:
        si.kind = "pad";
        break;
      case StepOp::kMaxPool:
        si.kind = "maxpool";
        break;
      case StepOp::kAvgPool:
        si.kind = "avgpool";
        break;
      case StepOp::kAffine:
        si.kind = "affine";
        break;
      case StepOp::kShuffle:
        si.kind = "shuffle";
        break;
      case StepOp::kMul:
        si.kind = "mul";
        break;
      case StepOp::kUnary:
        si.kind = st.unary == UnaryOp::kSigmoid ? "sigmoid" : "hardsigmoid";
        break;
      case StepOp::kConcat:
        si.kind = "concat";
        break;
      case StepOp::kConv: {
        const ConvLayer& L = *st.conv;
        si.kind = L.kind == ConvKind::kDwconv    ? "dwconv"
                  : L.kind == ConvKind::kFc      ? "fc"
                  : L.kind == ConvKind::kGrouped ? "gconv"
                                                 : "conv";
        si.w_bits = L.bits, si.a_bits = L.a_bits, si.macs = L.macs();
        size_t need = L.kind == ConvKind::kDwconv
                          ? static_cast<size_t>(5 * L.kh * L.kw + 4) * ((L.oc + 63) / 64 * 64)
                          : static_cast<size_t>(L.kh) * L.kw * L.icp * 64;
        scratch_bytes = std::max(scratch_bytes, need);
        break;
      }
    }
    info.push_back(si);
  }
  seconds.assign(info.size(), 0.0);
  for (int t = 0; t < options.threads; ++t) {
    scratch.push_back(std::make_unique<Buffer>());
    if (!scratch.back()->resize(scratch_bytes))
      return {StatusCode::kOutOfMemory, path + ": out of memory for the kernels' scratch"};
  }
  return Status::Ok();
}

// ws holds buffers for n images (allocate).
void Model::Impl::run_steps(const float* input, int n, float* output, Workspace& ws, int threads,
                            std::vector<double>* seconds) {
  size_t i = 0;
  for (const Step& st : p.steps) {
    if (st.dead) continue;
    for (int t : {st.out, st.out2})  // a shared slot: borders and padding back to zp
      if (t >= 0 && plan.refill[t])
        std::fill_n(ws.data[t], static_cast<size_t>(tensor_bytes(p.tensors[t])) * n,
                    static_cast<uint8_t>(p.tensors[t].zp));
    if (seconds) {
      auto t0 = std::chrono::steady_clock::now();
      run_step(st, input, n, ws, threads);
      (*seconds)[i] += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    } else {
      run_step(st, input, n, ws, threads);
    }
    ++i;
  }
  const TensorDesc& o = p.tensors[p.output];
  const int32_t* r = reinterpret_cast<const int32_t*>(ws.data[p.output]);
  for (int b = 0; b < n; ++b)
    for (int c = 0; c < o.c; ++c) {
      int64_t idx = static_cast<int64_t>(b) * o.c + c;
      output[idx] = static_cast<float>(r[idx]) * p.out_scale[c] + p.out_bias[c];
    }
}

Status Model::run(const float* input, int n, float* output) {
  if (n < 1)
    return {StatusCode::kInvalidArgument, "run: n = " + std::to_string(n) + ": must be >= 1"};
  return guarded("run", [&] { return impl_->run(input, n, output); });
}

Status Model::Impl::run(const float* input, int n, float* output) {
  Impl& m = *this;
  const int threads = m.options.threads;
  const int64_t image = static_cast<int64_t>(m.p.in_c) * m.p.in_h * m.p.in_w;
  const int classes = m.p.tensors[m.p.output].c;
  auto no_memory = [&](int images) {
    return Status{StatusCode::kOutOfMemory, "run: out of memory for the activations of " +
                                                std::to_string(images) + " images (" +
                                                std::to_string(activation_bytes()) +
                                                " bytes each); run fewer at a time"};
  };
  if (threads == 1 || n < 2 * threads) {  // one stream, every step split over the cores
    if (!m.allocate(m.spaces[0], n)) return no_memory(n);
    m.run_steps(input, n, output, m.spaces[0], threads, m.profiling ? &m.seconds : nullptr);
    return Status::Ok();
  }
  // Large batches: each thread runs the whole network on its own sub-batches of kSubBatch
  // images, so tensors stay in its cache and no step waits for the other core. Buffers are
  // allocated first: nothing may fail inside the parallel region.
  constexpr int kSubBatch = 8;
  for (Workspace& ws : m.spaces)
    if (!m.allocate(ws, std::min(n, kSubBatch))) return no_memory(std::min(n, kSubBatch));
  const int chunks = (n + kSubBatch - 1) / kSubBatch;
  if (m.profiling)
    for (auto& s : m.thread_seconds) s.assign(m.seconds.size(), 0.0);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (int c = 0; c < chunks; ++c) {
    int t = omp_get_thread_num();
    int first = c * kSubBatch, count = std::min(kSubBatch, n - first);
    m.run_steps(input + first * image, count, output + static_cast<int64_t>(first) * classes,
                m.spaces[t], 1, m.profiling ? &m.thread_seconds[t] : nullptr);
  }
  if (m.profiling)
    for (auto& s : m.thread_seconds)
      for (size_t i = 0; i < s.size(); ++i) m.seconds[i] += s[i] / threads;
  return Status::Ok();
}

bool debug_values(const Model& m, const std::string& name, std::vector<double>* values,
                  std::vector<int>* shape) {
  const Model::Impl& impl = *m.impl_;
  auto it = impl.p.names.find(name);
  if (it == impl.p.names.end() || impl.spaces[0].batch == 0 || !impl.spaces[0].data[it->second] ||
      impl.options.reuse_buffers)
    return false;
  const TensorDesc& d = impl.p.tensors[it->second];
  const int n = impl.spaces[0].batch;
  *shape = {n, d.c, d.h, d.w};
  values->assign(static_cast<size_t>(n) * d.c * d.h * d.w, 0.0);
  const uint8_t* data = impl.spaces[0].data[it->second];
  for (int b = 0; b < n; ++b)
    for (int c = 0; c < d.c; ++c)
      for (int y = 0; y < d.h; ++y)
        for (int x = 0; x < d.w; ++x) {
          int64_t px = (static_cast<int64_t>(b) * d.hp() + y + d.border) * d.wp() + x + d.border;
          double v = d.kind == TensorKind::kU8
                         ? (static_cast<int>(data[px * d.cp + c]) - d.zp) * d.scale
                         : reinterpret_cast<const int32_t*>(data)[px * d.cp + c] * d.scale;
          (*values)[((static_cast<size_t>(b) * d.c + c) * d.h + y) * d.w + x] = v;
        }
  return true;
}

int Model::channels() const { return impl_->p.in_c; }
int Model::height() const { return impl_->p.in_h; }
int Model::width() const { return impl_->p.in_w; }
int Model::classes() const { return impl_->p.tensors[impl_->p.output].c; }
Isa Model::isa() const { return impl_->isa; }
int Model::threads() const { return impl_->options.threads; }
const std::vector<StepInfo>& Model::steps() const { return impl_->info; }
int64_t Model::weight_bytes() const { return impl_->p.weight_bytes; }
int64_t Model::activation_bytes_per_image() const { return impl_->activation_bytes(); }
int64_t Model::buffer_bytes() const {
  int64_t bytes = 0;
  for (const Workspace& ws : impl_->spaces)
    for (const auto& b : ws.slots)
      if (b) bytes += static_cast<int64_t>(b->size());
  for (const auto& b : impl_->scratch) bytes += static_cast<int64_t>(b->size());
  return bytes;
}
void Model::set_profiling(bool on) { impl_->profiling = on; }
const std::vector<double>& Model::step_seconds() const { return impl_->seconds; }
void Model::clear_profile() { std::fill(impl_->seconds.begin(), impl_->seconds.end(), 0.0); }

}  // namespace mpq::runtime
