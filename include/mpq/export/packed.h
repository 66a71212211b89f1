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

#include "mpq/export/packed_format.h"
#include "mpq/export/quantized.h"
#include "mpq/ir/graph.h"

namespace mpq::export_ {

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
