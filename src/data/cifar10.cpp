// CIFAR-10 binary: records of 1 label byte (0-9) + 3072 pixel bytes (1024 R, 1024 G, 1024 B,
// row-major 32x32). The whole file is held in memory (10,000 images = 30 MB).
#include "mpq/core/error.h"
#include "mpq/core/file.h"
#include "readers.h"

namespace mpq::data {
namespace {

constexpr int64_t kRecord = 1 + 3 * 32 * 32;

class Cifar10 : public Dataset {
 public:
  explicit Cifar10(const std::string& path) : path_(path) {
    std::string bytes = read_file(path, "CIFAR-10 file");
    MPQ_CHECK(!bytes.empty() && bytes.size() % kRecord == 0, ErrorCode::kBadFile,
              "{}: size {} bytes is not a whole number of {}-byte CIFAR-10 records", path,
              bytes.size(), kRecord);
    int64_t n = static_cast<int64_t>(bytes.size()) / kRecord;
    data_ = at::empty({n, kRecord}, at::kByte);
    std::memcpy(data_.data_ptr(), bytes.data(), bytes.size());
    const uint8_t* p = data_.data_ptr<uint8_t>();
    for (int64_t i = 0; i < n; ++i)
      MPQ_CHECK(p[i * kRecord] <= 9, ErrorCode::kBadFile,
                "{}: record {} has label {}; CIFAR-10 labels are 0-9", path, i, p[i * kRecord]);
  }
  int64_t size() const override { return data_.size(0); }
  int64_t label(int64_t i) const override { return data_.data_ptr<uint8_t>()[i * kRecord]; }
  at::Tensor image(int64_t i) const override { return data_[i].slice(0, 1).reshape({3, 32, 32}); }
  std::string where(int64_t i) const override { return fmt::format("{}: record {}", path_, i); }
  std::string kind() const override { return "cifar10"; }

 private:
  std::string path_;
  at::Tensor data_;
};

}  // namespace

std::unique_ptr<Dataset> open_cifar10(const std::string& path) {
  return std::make_unique<Cifar10>(path);
}

}  // namespace mpq::data
