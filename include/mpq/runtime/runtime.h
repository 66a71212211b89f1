// mpq's integer runtime (issue 9): executes a packed .mpq model with integer
// arithmetic only. No LibTorch and no exceptions across this API: every call returns a Status.
//
//   std::unique_ptr<mpq::runtime::Model> m;
//   mpq::runtime::Status s = mpq::runtime::Model::load("net.mpq", {}, &m);
//   if (!s.ok()) { fprintf(stderr, "%s\n", s.message.c_str()); ... }
//   s = m->run(images, n, logits);   // float NCHW in, float logits out
//
// Inside: activations are uint8 NHWC (any width <= 8 by clamping, a zp-filled border for the
// next convolution's padding); weights stay bit-packed at their width (2..8 bits) in 16-channel
// blocks and are unpacked into a small panel right before use; int32 accumulation; every
// requantization is a fixed-point multiplier and shift (dyadic). Values the simulation keeps in
// float (a residual sum, a pooled feature) are int32 with 2^26 levels over the range of the
// quantizer that reads them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace mpq::runtime {

enum class StatusCode { kOk = 0, kBadFile, kUnsupported, kInvalidArgument, kOutOfMemory };

struct Status {
  StatusCode code = StatusCode::kOk;
  std::string message;
  bool ok() const { return code == StatusCode::kOk; }
  static Status Ok() { return {}; }
};

// Kernel sets, best last in dispatch order; kAuto picks the best this CPU runs (CPUID).
enum class Isa { kRef = 0, kAvx2 = 1, kAvx512Vnni = 2, kAuto = 99 };
const char* isa_name(Isa isa);
// The best kernel set this CPU supports.
Isa best_isa();
bool isa_supported(Isa isa);

// The int8 multiply-accumulate rate of the ISA's dot-product instruction on `threads` cores,
// measured (GMAC/s): vpdpbusd for AVX-512 VNNI, vpmaddubsw for AVX2; 0 for ref.
double int8_peak_gmacs(Isa isa, int threads);

struct Options {
  int threads = 2;
  Isa isa = Isa::kAuto;
  // Tensors whose lives do not overlap share buffers; false keeps every tensor (debug_values).
  bool reuse_buffers = true;
};

// One step of the lowered program, for profiles and latency tables.
struct StepInfo {
  std::string name;    // the ONNX node (a conv's name is its layer name)
  std::string kind;    // conv, dwconv, fc, quantize, add, clip, gap, slice, pad, maxpool, concat
  int w_bits = 0;      // convs
  int a_bits = 0;      // width of the input activation grid (convs)
  int64_t macs = 0;    // per image
  std::string output;  // "u8" (fused requantize and clamp), "i32" or "f32"
};

class Model;
// For debugging and tests: the real values (NCHW) of the graph's value `name` after the last
// run() of fewer than 2·threads images, with Options::reuse_buffers off; false when the runtime
// keeps no such tensor (fused).
bool debug_values(const Model& m, const std::string& name, std::vector<double>* values,
                  std::vector<int>* shape);

class Model {
 public:
  static Status load(const std::string& path, const Options& options, std::unique_ptr<Model>* out);
  ~Model();

  // input: n images, float NCHW as the ONNX model's input; output: n x classes floats.
  // One call at a time per Model (its buffers are reused); use a Model per calling thread.
  Status run(const float* input, int n, float* output);

  int channels() const;
  int height() const;
  int width() const;
  int classes() const;
  Isa isa() const;
  int threads() const;
  const std::vector<StepInfo>& steps() const;
  // Bytes held for weights (bit-packed, as in the file), and for activations and scratch at the
  // largest batch run so far.
  int64_t weight_bytes() const;
  // Activation buffers one image needs (run(n) takes about n times this, or 8 times per thread
  // for large batches).
  int64_t activation_bytes_per_image() const;
  int64_t buffer_bytes() const;
  // With profiling on, run() adds each step's wall time (seconds) into step_seconds().
  void set_profiling(bool on);
  const std::vector<double>& step_seconds() const;
  void clear_profile();

  struct Impl;

 private:
  friend bool debug_values(const Model&, const std::string&, std::vector<double>*,
                           std::vector<int>*);
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mpq::runtime
