#include "mpq/export/packed.h"

#include <onnx/onnx_pb.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "../import/onnx/tensor_proto.h"
#include "mpq/core/error.h"
#include "mpq/core/file.h"
#include "mpq/export/onnx_writer.h"
#include "mpq/import/onnx_importer.h"

namespace mpq::export_ {
namespace {

template <typename T>
void append(std::string& out, const T& value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof(T));
}

struct Parsed {
  PackedInfo info;
  std::vector<uint64_t> offsets;
};

Parsed parse(const std::string& bytes, const std::string& path) {
  PackedLayout layout;
  PackedProblem problem = parse_packed(bytes, path, &layout);
  MPQ_CHECK(problem.message.empty(),
            problem.unsupported ? ErrorCode::kUnsupported : ErrorCode::kBadFile, "{}",
            problem.message);
  Parsed p;
  p.info.file_bytes = static_cast<int64_t>(bytes.size());
  p.info.header = layout.header;
  for (PackedLayout::Tensor& t : layout.tensors) {
    p.info.tensors.push_back({t.name, t.bits, t.shape, t.bytes});
    p.offsets.push_back(t.offset);
  }
  return p;
}

// The graph section: uint64 size of the serialised ONNX model, then the model zlib-compressed.
std::string compress_graph(const std::string& raw) {
  uLongf size = compressBound(raw.size());
  std::string out(sizeof(uint64_t) + size, '\0');
  uint64_t raw_size = raw.size();
  std::memcpy(out.data(), &raw_size, sizeof(raw_size));
  int rc = compress2(reinterpret_cast<Bytef*>(out.data() + sizeof(uint64_t)), &size,
                     reinterpret_cast<const Bytef*>(raw.data()), raw.size(), Z_BEST_COMPRESSION);
  MPQ_CHECK(rc == Z_OK, ErrorCode::kInternal, "zlib compress2 failed ({})", rc);
  out.resize(sizeof(uint64_t) + size);
  return out;
}

}  // namespace

std::string pack_bits(const at::Tensor& q, int bits) {
  at::Tensor flat = q.to(at::kChar).contiguous().reshape({-1});
  const int8_t* v = flat.data_ptr<int8_t>();
  int64_t n = flat.numel();
  std::string out(static_cast<size_t>((n * bits + 7) / 8), '\0');
  uint32_t mask = (1u << bits) - 1;
  uint64_t acc = 0;
  int filled = 0;
  size_t pos = 0;
  for (int64_t i = 0; i < n; ++i) {
    acc |= static_cast<uint64_t>(static_cast<uint32_t>(v[i]) & mask) << filled;
    filled += bits;
    while (filled >= 8) {
      out[pos++] = static_cast<char>(acc & 0xff);
      acc >>= 8;
      filled -= 8;
    }
  }
  if (filled > 0) out[pos++] = static_cast<char>(acc & 0xff);
  return out;
}

at::Tensor unpack_bits(const std::string& bytes, size_t offset, int64_t count, int bits) {
  at::Tensor out = at::empty({count}, at::kChar);
  int8_t* v = out.data_ptr<int8_t>();
  uint64_t acc = 0;
  int filled = 0;
  size_t pos = offset;
  for (int64_t i = 0; i < count; ++i) {
    while (filled < bits) {
      acc |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[pos++])) << filled;
      filled += 8;
    }
    int32_t raw = static_cast<int32_t>(acc & ((1u << bits) - 1));
    acc >>= bits;
    filled -= bits;
    if (raw & (1 << (bits - 1))) raw -= 1 << bits;  // sign-extend
    v[i] = static_cast<int8_t>(raw);
  }
  return out;
}

PackedInfo save_packed(const QuantizedModel& model, const quant::QuantSim& sim,
                       const std::string& path) {
  std::vector<std::pair<std::string, int>> packed;  // (initializer name, bits)
  for (const quant::QuantLayer& l : sim.layers())
    if (l.quantizes_weight())
      packed.emplace_back(sim.graph().values[l.weight].name + "_quantized", l.w_bits);
  std::vector<at::Tensor> tensors;
  for (auto& [name, bits] : packed)
    tensors.push_back(model.qcdq.initializer(model.qcdq.value_id(name)));
  // The graph without the payload of the packed weights.
  onnx::ModelProto proto;
  {
    // to_onnx_bytes runs the checker, which needs every initializer: check the full model
    // there, then drop the packed initializers from the serialised proto.
    std::string full = to_onnx_bytes(model.qcdq);
    proto.ParseFromString(full);
    auto* inits = proto.mutable_graph()->mutable_initializer();
    for (int i = inits->size() - 1; i >= 0; --i)
      for (auto& [name, bits] : packed)
        if (inits->Get(i).name() == name) {
          inits->DeleteSubrange(i, 1);
          break;
        }
  }
  std::string raw_graph;
  proto.SerializeToString(&raw_graph);
  std::string graph_bytes = compress_graph(raw_graph);

  std::string table, weights;
  PackedInfo info;
  for (size_t t = 0; t < packed.size(); ++t) {
    const auto& [name, bits] = packed[t];
    const at::Tensor& q = tensors[t];
    PackedEntry e{};
    e.name_bytes = static_cast<uint32_t>(name.size());
    e.bits = static_cast<uint8_t>(bits);
    e.ndim = static_cast<uint8_t>(q.dim());
    e.offset = weights.size();
    append(table, e);
    for (int64_t d : q.sizes()) append(table, d);
    table += name;
    std::string payload = pack_bits(q, bits);
    weights += payload;
    info.tensors.push_back({name, bits, q.sizes().vec(), static_cast<int64_t>(payload.size())});
  }
  PackedHeader& h = info.header;
  std::memcpy(h.magic, kPackedMagic, 4);
  h.version = kPackedVersion;
  h.header_bytes = sizeof(PackedHeader);
  h.tensors = static_cast<uint32_t>(packed.size());
  h.flags = 0;
  h.graph_offset = sizeof(PackedHeader);
  h.graph_bytes = graph_bytes.size();
  h.table_offset = h.graph_offset + h.graph_bytes;
  h.table_bytes = table.size();
  h.weights_offset = h.table_offset + h.table_bytes;
  h.weights_bytes = weights.size();
  std::string file;
  append(file, h);
  file += graph_bytes;
  file += table;
  file += weights;
  info.file_bytes = static_cast<int64_t>(file.size());
  write_file_atomic(path, file);
  return info;
}

PackedInfo read_packed_info(const std::string& path) {
  return parse(read_file(path, ".mpq model"), path).info;
}

bool is_packed_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  return in.gcount() == 4 && std::memcmp(magic, kPackedMagic, 4) == 0;
}

ir::Graph load_packed(const std::string& path) {
  std::string bytes = read_file(path, ".mpq model");
  Parsed p = parse(bytes, path);
  const PackedHeader& h = p.info.header;
  onnx::ModelProto proto;
  std::string graph;
  PackedProblem problem = inflate_graph(bytes, h, path, &graph);
  MPQ_CHECK(problem.message.empty(), ErrorCode::kBadFile, "{}", problem.message);
  MPQ_CHECK(proto.ParseFromString(graph), ErrorCode::kBadFile,
            "{}: the graph section is not a valid ONNX model", path);
  for (size_t t = 0; t < p.info.tensors.size(); ++t) {
    const PackedTensor& pt = p.info.tensors[t];
    int64_t numel = 1;
    for (int64_t d : pt.shape) numel *= d;
    at::Tensor q = unpack_bits(bytes, h.weights_offset + p.offsets[t], numel, pt.bits);
    import::tensor_to_proto(q.reshape(pt.shape), pt.name,
                            *proto.mutable_graph()->add_initializer());
  }
  std::string model;
  proto.SerializeToString(&model);
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  return import::parse_onnx(model, path, dir.empty() ? "." : dir.string());
}

}  // namespace mpq::export_
