// Fuzz target: the JPEG decoder of image-folder data sets (libjpeg-turbo behind setjmp, grey
// and CMYK conversion, the size limit).
#include "data/readers.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  mpq::fuzz::expect_clean("fuzz.jpg", [&] {
    at::Tensor t = mpq::data::decode_jpeg(bytes, "fuzz.jpg");
    if (t.dim() != 3 || t.size(0) != 3) std::abort();  // always RGB [3, H, W]
  });
  return 0;
}
