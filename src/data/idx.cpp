// IDX (MNIST, Fashion-MNIST): big-endian header (magic 0x0803 images / 0x0801 labels, then
// dims), then uint8 data; read through zlib, so .gz and plain files both work.
#include <zlib.h>

#include <filesystem>

#include "mpq/core/error.h"
#include "mpq/core/file.h"
#include "readers.h"

namespace mpq::data {
namespace {

std::string gunzip_file(const std::string& path) {
  MPQ_CHECK(file_exists(path), ErrorCode::kBadFile, "{}: IDX file does not exist", path);
  MPQ_CHECK(std::filesystem::is_regular_file(path), ErrorCode::kBadFile,
            "{}: is not a regular file, expected an IDX file", path);
  gzFile f = gzopen(path.c_str(), "rb");
  MPQ_CHECK(f != nullptr, ErrorCode::kBadFile, "{}: cannot open", path);
  std::string out;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof(buf))) > 0) out.append(buf, n);
  int err = 0;
  const char* msg = gzerror(f, &err);
  std::string message = msg ? msg : "";
  gzclose(f);
  MPQ_CHECK(n == 0 && (err == Z_OK || err == Z_STREAM_END), ErrorCode::kBadFile,
            "{}: gzip stream is corrupt or truncated ({})", path, message);
  return out;
}

uint32_t be32(const std::string& b, size_t at) {
  auto u = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(b[at + i])); };
  return u(0) << 24 | u(1) << 16 | u(2) << 8 | u(3);
}

class Idx : public Dataset {
 public:
  Idx(const std::string& images, const std::string& labels) : images_path_(images) {
    std::string img = gunzip_file(images), lbl = gunzip_file(labels);
    MPQ_CHECK(img.size() >= 16 && be32(img, 0) == 0x00000803, ErrorCode::kBadFile,
              "{}: not an IDX image file (magic must be 0x00000803)", images);
    MPQ_CHECK(lbl.size() >= 8 && be32(lbl, 0) == 0x00000801, ErrorCode::kBadFile,
              "{}: not an IDX label file (magic must be 0x00000801)", labels);
    int64_t n = be32(img, 4), h = be32(img, 8), w = be32(img, 12);
    // Each count is below 2^32; the product is checked against the data before it can overflow.
    MPQ_CHECK(h > 0 && w > 0 && n <= static_cast<int64_t>(img.size()) / h / w, ErrorCode::kBadFile,
              "{}: header says {} images of {}x{} but the data has {} bytes", images, n, h, w,
              img.size());
    MPQ_CHECK(static_cast<int64_t>(img.size()) == 16 + n * h * w, ErrorCode::kBadFile,
              "{}: header says {} images of {}x{} ({} bytes) but the data has {} bytes", images, n,
              h, w, 16 + n * h * w, img.size());
    int64_t nl = be32(lbl, 4);
    MPQ_CHECK(nl == n && static_cast<int64_t>(lbl.size()) == 8 + n, ErrorCode::kBadFile,
              "{}: {} labels for {} images in {}", labels, nl, n, images);
    images_ = at::empty({n, 1, h, w}, at::kByte);
    std::memcpy(images_.data_ptr(), img.data() + 16, n * h * w);
    labels_ = at::empty({n}, at::kByte);
    std::memcpy(labels_.data_ptr(), lbl.data() + 8, n);
  }
  int64_t size() const override { return images_.size(0); }
  int64_t label(int64_t i) const override { return labels_.data_ptr<uint8_t>()[i]; }
  at::Tensor image(int64_t i) const override { return images_[i]; }
  std::string where(int64_t i) const override {
    return fmt::format("{}: image {}", images_path_, i);
  }
  std::string kind() const override { return "idx"; }

 private:
  std::string images_path_;
  at::Tensor images_, labels_;
};

}  // namespace

std::unique_ptr<Dataset> open_idx(const std::string& images, const std::string& labels) {
  return std::make_unique<Idx>(images, labels);
}

}  // namespace mpq::data
