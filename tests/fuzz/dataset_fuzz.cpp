// Fuzz target: the data set readers: CIFAR-10 binary, IDX images + labels (plain or gzip) and
// an image folder's labels.csv. The first byte picks the reader; for IDX the next two bytes
// say where the image file ends and the label file begins. Every image and label of what
// opens is read.
#include <filesystem>

#include "data/readers.h"
#include "fuzz_check.h"
#include "fuzz_util.h"

namespace {

void read_all(const mpq::data::Dataset& d, bool images) {
  for (int64_t i = 0; i < d.size() && i < 64; ++i) {
    d.label(i);
    if (images) d.image(i);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  static mpq::fuzz::MemFile a("a.bin"), b("b.bin");
  static const std::string dir = [] {
    auto d = std::filesystem::temp_directory_path() / "mpq_dataset_fuzz";
    std::filesystem::create_directories(d);
    return d.string();
  }();
  const uint8_t* body = data + 3;
  const size_t n = size - 3;
  switch (data[0] % 3) {
    case 0: {
      const std::string& path = a.write(body, n);
      mpq::fuzz::expect_clean(path, [&] { read_all(*mpq::data::open_cifar10(path), true); });
      break;
    }
    case 1: {
      const size_t cut = std::min<size_t>(n, data[1] | data[2] << 8);
      const std::string images = a.write(body, cut);
      const std::string& labels = b.write(body + cut, n - cut);
      mpq::fuzz::expect_clean({images, labels},
                              [&] { read_all(*mpq::data::open_idx(images, labels), true); });
      break;
    }
    default: {
      const std::string& csv = a.write(body, n);
      mpq::fuzz::expect_clean(csv,
                              [&] { read_all(*mpq::data::open_image_folder(dir, csv), false); });
      break;
    }
  }
  return 0;
}
