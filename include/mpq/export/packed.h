// The packed binary model (.mpq): quantized weights bit-packed at their width. Its file size is
// the compressed size mpq's reports quote.
//
// Layout (version 1, little-endian):
//   header   64 bytes (PackedHeader)
//   graph    uint64 n, then zlib: the QCDQ ONNX model (export_quantized, n bytes serialised)
//            without the payload of the packed weight initializers: structure, float biases,
//            per-channel weight scales, activation encodings
//   table    per packed tensor: 16 bytes + 8·ndim (dims) + the name's bytes (PackedEntry)
//   weights  per packed tensor ceil(numel·bits/8) bytes, starting on a byte boundary: the int8
//            tensor in row-major order as b-bit two's complement values, least significant bit
//            first
// So size = 64 + graph + Σ (16 + 8·ndim + |name|) + Σ ceil(params·bits/8).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mpq/export/quantized.h"
#include "mpq/ir/graph.h"

namespace mpq::export_ {

inline constexpr char kPackedMagic[4] = {'M', 'P', 'Q', 'P'};
inline constexpr uint16_t kPackedVersion = 1;

struct PackedHeader {
  char magic[4];
  uint16_t version;
  uint16_t header_bytes;
  uint32_t tensors;
  uint32_t flags;  // 0
  uint64_t graph_offset, graph_bytes;
  uint64_t table_offset, table_bytes;
  uint64_t weights_offset, weights_bytes;
};
static_assert(sizeof(PackedHeader) == 64, "the .mpq header is 64 bytes on disk");

struct PackedEntry {
  uint32_t name_bytes;
  uint8_t bits;
  uint8_t ndim;
  uint16_t reserved;
  uint64_t offset;  // into the weights section
};
static_assert(sizeof(PackedEntry) == 16, "a .mpq table entry is 16 bytes + dims + name");

// Bit-packs int8 values (each within the signed b-bit range) into ceil(n·bits/8) bytes.
std::string pack_bits(const at::Tensor& q, int bits);
// The inverse: `count` values of `bits` bits, sign-extended to int8.
at::Tensor unpack_bits(const std::string& bytes, size_t offset, int64_t count, int bits);

struct PackedTensor {
  std::string name;
  int bits = 8;
  std::vector<int64_t> shape;
  int64_t bytes = 0;  // packed payload
};

struct PackedInfo {
  PackedHeader header{};
  int64_t file_bytes = 0;
  std::vector<PackedTensor> tensors;
};

// Writes the packed model (temporary file and rename); returns what was written.
PackedInfo save_packed(const QuantizedModel& model, const quant::QuantSim& sim,
                       const std::string& path);
// Reads and validates the header and table.
PackedInfo read_packed_info(const std::string& path);
// True when the file starts with the .mpq magic.
bool is_packed_file(const std::string& path);
// The QCDQ graph back, with the weights unpacked (mpq eval / inspect accept .mpq files).
ir::Graph load_packed(const std::string& path);

}  // namespace mpq::export_
