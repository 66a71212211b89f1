// The on-disk records of the packed .mpq format (layout: mpq/export/packed.h). Free of
// LibTorch: the integer runtime reads the same records.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

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

// A parsed header and table. Shared by the exporter (which throws) and the integer runtime
// (which returns a status), so neither throws from here.
struct PackedLayout {
  struct Tensor {
    std::string name;
    int bits = 8;
    std::vector<int64_t> shape;
    uint64_t offset = 0;  // into the weights section
    int64_t bytes = 0;    // packed payload
  };
  PackedHeader header{};
  std::vector<Tensor> tensors;
};

struct PackedProblem {
  std::string message;       // empty: none; else one line starting with `where`
  bool unsupported = false;  // a valid file of another format version
};

// Reads and checks the header and table of a whole .mpq file's bytes.
PackedProblem parse_packed(const std::string& bytes, const std::string& where, PackedLayout* out);
// The serialised ONNX model in the graph section.
PackedProblem inflate_graph(const std::string& bytes, const PackedHeader& header,
                            const std::string& where, std::string* raw);

}  // namespace mpq::export_
