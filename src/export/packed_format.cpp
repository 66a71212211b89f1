// Parsing the .mpq header, table and graph section without LibTorch and without exceptions:
// the exporter turns a problem into mpq::Error, the integer runtime into a Status.
#include "mpq/export/packed_format.h"

#include <fmt/format.h>
#include <zlib.h>

#include <cstring>
#include <tuple>

namespace mpq::export_ {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the .mpq format is little-endian");

template <typename T>
bool read_at(const std::string& bytes, uint64_t offset, T* out) {
  if (offset + sizeof(T) > bytes.size() || offset + sizeof(T) < offset) return false;
  std::memcpy(out, bytes.data() + offset, sizeof(T));
  return true;
}

constexpr int64_t kMaxPackedValues = int64_t{1} << 40;

}  // namespace

PackedProblem parse_packed(const std::string& bytes, const std::string& where, PackedLayout* out) {
  auto bad = [&](auto&&... args) {
    return PackedProblem{where + ": " + fmt::format(std::forward<decltype(args)>(args)...)};
  };
  auto truncated = [&](uint64_t at, size_t need) {
    return bad("truncated .mpq file ({} bytes; a record at {} needs {} more)", bytes.size(), at,
               need);
  };
  PackedHeader& h = out->header;
  // The magic first: a file that is not a .mpq at all says so, whatever its length.
  if (bytes.size() < 4 || std::memcmp(bytes.data(), kPackedMagic, 4) != 0)
    return bad("not an mpq packed model (no 'MPQP' magic); `mpq quantize` writes one");
  if (!read_at(bytes, 0, &h)) return truncated(0, sizeof(PackedHeader));
  if (h.version != kPackedVersion) {
    PackedProblem p =
        bad(".mpq format version {}; this mpq reads version {}", h.version, kPackedVersion);
    p.unsupported = true;
    return p;
  }
  if (h.header_bytes != sizeof(PackedHeader))
    return bad("header size {} != {}", h.header_bytes, sizeof(PackedHeader));
  for (auto [off, len, what] : {std::tuple{h.graph_offset, h.graph_bytes, "graph"},
                                std::tuple{h.table_offset, h.table_bytes, "table"},
                                std::tuple{h.weights_offset, h.weights_bytes, "weights"}})
    if (off + len > bytes.size() || off + len < off)
      return bad(
          "the {} section ({} bytes at {}) runs past the end of the file ({} bytes; "
          "truncated?)",
          what, len, off, bytes.size());
  out->tensors.clear();
  uint64_t at = h.table_offset;
  for (uint32_t t = 0; t < h.tensors; ++t) {
    PackedEntry e{};
    if (!read_at(bytes, at, &e)) return truncated(at, sizeof(e));
    at += sizeof(e);
    if (e.bits < 2 || e.bits > 8)
      return bad("table entry {} has width {}; packed widths are 2..8", t, e.bits);
    PackedLayout::Tensor pt;
    pt.bits = e.bits;
    pt.offset = e.offset;
    int64_t numel = 1;
    for (uint8_t d = 0; d < e.ndim; ++d) {
      int64_t dim = 0;
      if (!read_at(bytes, at, &dim)) return truncated(at, sizeof(dim));
      if (dim < 0) return bad("table entry {}: negative dimension", t);
      at += sizeof(dim);
      pt.shape.push_back(dim);
      if (dim > 0 && numel > kMaxPackedValues / dim)
        return bad("table entry {}: more than 2^40 values", t);
      numel *= dim;
    }
    if (at + e.name_bytes > bytes.size()) return bad("truncated table");
    pt.name = bytes.substr(at, e.name_bytes);
    at += e.name_bytes;
    pt.bytes = (numel * e.bits + 7) / 8;
    if (e.offset > h.weights_bytes || static_cast<uint64_t>(pt.bytes) > h.weights_bytes - e.offset)
      return bad("tensor '{}' ({} bytes at {}) runs past the weights section", pt.name, pt.bytes,
                 e.offset);
    out->tensors.push_back(std::move(pt));
  }
  return {};
}

PackedProblem inflate_graph(const std::string& bytes, const PackedHeader& h,
                            const std::string& where, std::string* raw) {
  uint64_t raw_size = 0;
  if (h.graph_bytes < sizeof(raw_size) || !read_at(bytes, h.graph_offset, &raw_size))
    return {where + ": empty graph section"};
  // zlib's deflate expands at most 1032:1; a larger claim is a damaged or crafted header.
  const uint64_t most = (h.graph_bytes - sizeof(raw_size)) * 1032 + 64;
  if (raw_size > most || raw_size >= (uint64_t{1} << 34))
    return {fmt::format("{}: graph section claims {} bytes uncompressed from {} (zlib's limit {})",
                        where, raw_size, h.graph_bytes - sizeof(raw_size), most)};
  raw->assign(raw_size, '\0');
  uLongf got = raw_size;
  int rc =
      uncompress(reinterpret_cast<Bytef*>(raw->data()), &got,
                 reinterpret_cast<const Bytef*>(bytes.data() + h.graph_offset + sizeof(raw_size)),
                 h.graph_bytes - sizeof(raw_size));
  if (rc != Z_OK || got != raw_size)
    return {fmt::format("{}: the graph section does not decompress (zlib error {}; corrupt file?)",
                        where, rc)};
  return {};
}

}  // namespace mpq::export_
