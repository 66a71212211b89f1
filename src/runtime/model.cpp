// Loading a .mpq file into the integer runtime: the QCDQ graph is lowered to a list of integer
// steps (lowering.cpp and src/runtime/lower/, one function per op), then finished
// (program.cpp).
//
//   QuantizeLinear [-> Clip] -> DequantizeLinear   a uint8 tensor (the Clip narrows its grid)
//   DequantizeLinear(packed int8 weight)            a weight, kept bit-packed
//   Conv / Gemm                                     conv, dwconv or fc on a uint8 input; the
//                                                   output is int32 ("real") unless the chain
//                                                   Conv [-> Relu | Clip] -> QuantizeLinear
//                                                   fuses into one uint8 requantize and clamp
//   Add, Relu, Clip, GlobalAveragePool, MaxPool,    on int32 real tensors
//   AveragePool, BatchNormalization (after a
//   Concat: per-channel affine), Concat, Slice, Pad
//   Flatten, Reshape                                aliases (of a 1x1 spatial tensor)
//
// A real tensor holds round(value / S), S spreading the range of a quantizer that reads it
// (directly or through real steps) over 2^26 levels, so a residual stream keeps the precision
// the simulation gives it in float.
#include <onnx/onnx_pb.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "lowering.h"
#include "mpq/export/packed_format.h"

namespace mpq::runtime {
namespace {

Status error(StatusCode code, const std::string& message) { return Status{code, message}; }

}  // namespace

Status load_program(const std::string& path, Program* p) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec) && !std::filesystem::is_regular_file(path, ec))
    return error(StatusCode::kBadFile, path + ": is not a regular file, expected a .mpq model");
  std::ifstream f(path, std::ios::binary);
  if (!f) return error(StatusCode::kBadFile, path + ": cannot open the .mpq model");
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string bytes = ss.str();
  export_::PackedLayout layout;
  export_::PackedProblem problem = export_::parse_packed(bytes, path, &layout);
  std::string raw;
  if (problem.message.empty()) problem = export_::inflate_graph(bytes, layout.header, path, &raw);
  if (!problem.message.empty())
    return error(problem.unsupported ? StatusCode::kUnsupported : StatusCode::kBadFile,
                 problem.message);
  onnx::ModelProto model;
  if (!model.ParseFromString(raw))
    return error(StatusCode::kBadFile, path + ": the graph section is not a valid ONNX model");
  // The weights section stays in memory, packed, while the layers repack from it.
  const export_::PackedHeader& h = layout.header;
  p->file = bytes.substr(h.weights_offset, h.weights_bytes);
  p->file.append(8, '\0');
  std::map<std::string, PackedRef> packed;
  for (const export_::PackedLayout::Tensor& t : layout.tensors) {
    PackedRef ref;
    ref.bits = t.bits;
    ref.shape = t.shape;
    ref.data = reinterpret_cast<const uint8_t*>(p->file.data()) + t.offset;
    packed[t.name] = ref;
  }
  Lowering lowering(p, path);
  Status s = lowering.run(model, packed);
  // Every layer now holds its own packed copy in the runtime layout.
  p->file.clear();
  p->file.shrink_to_fit();
  if (!s.ok()) return s;
  return finish_program(p, path);
}

}  // namespace mpq::runtime
