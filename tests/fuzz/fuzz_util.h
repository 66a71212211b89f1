// Helpers shared by the fuzz targets (libFuzzer): readers that take a path get the fuzzer's
// bytes through an in-memory file, and a .mpq can be taken apart and packed again.
#pragma once

#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "mpq/export/packed_format.h"

namespace mpq::fuzz {

// An in-memory file (memfd) that holds the last bytes written; path() opens it.
class MemFile {
 public:
  explicit MemFile(const char* name) : fd_(memfd_create(name, 0)) {
    if (fd_ < 0) {
      std::perror("memfd_create");
      std::abort();
    }
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  const std::string& write(const uint8_t* data, size_t size) {
    if (ftruncate(fd_, 0) != 0 || pwrite(fd_, data, size, 0) != static_cast<ssize_t>(size)) {
      std::perror("memfd write");
      std::abort();
    }
    return path_;
  }
  const std::string& write(const std::string& bytes) {
    return write(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }

 private:
  int fd_;
  std::string path_;
};

// A .mpq file's parts: the serialised ONNX graph (inflated) and the table and weights
// sections as they are.
struct MpqParts {
  export_::PackedHeader header{};
  std::string graph, table, weights;
};

inline bool split_mpq(const std::string& bytes, MpqParts* out) {
  export_::PackedLayout layout;
  if (!export_::parse_packed(bytes, "fuzz", &layout).message.empty()) return false;
  if (!export_::inflate_graph(bytes, layout.header, "fuzz", &out->graph).message.empty())
    return false;
  const export_::PackedHeader& h = layout.header;
  out->header = h;
  out->table = bytes.substr(h.table_offset, h.table_bytes);
  out->weights = bytes.substr(h.weights_offset, h.weights_bytes);
  return true;
}

// Packs the parts again with a header that describes them (as the exporter lays a file out).
inline std::string join_mpq(const MpqParts& p) {
  uLongf size = compressBound(p.graph.size());
  std::string graph(sizeof(uint64_t) + size, '\0');
  uint64_t raw_size = p.graph.size();
  std::memcpy(graph.data(), &raw_size, sizeof(raw_size));
  compress2(reinterpret_cast<Bytef*>(graph.data() + sizeof(uint64_t)), &size,
            reinterpret_cast<const Bytef*>(p.graph.data()), p.graph.size(), 1);
  graph.resize(sizeof(uint64_t) + size);
  export_::PackedHeader h = p.header;
  h.graph_offset = sizeof(h);
  h.graph_bytes = graph.size();
  h.table_offset = h.graph_offset + h.graph_bytes;
  h.table_bytes = p.table.size();
  h.weights_offset = h.table_offset + h.table_bytes;
  h.weights_bytes = p.weights.size();
  std::string file(reinterpret_cast<const char*>(&h), sizeof(h));
  return file + graph + p.table + p.weights;
}

}  // namespace mpq::fuzz
