// Fuzz target: the ONNX importer (protobuf parse, initializers, attributes, every op's check,
// topological sort, constant folding). The model's folder is an empty directory, so external
// data must resolve inside it or fail cleanly.
#include <filesystem>

#include "fuzz_check.h"
#include "mpq/import/onnx_importer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = [] {
    auto d = std::filesystem::temp_directory_path() / "mpq_onnx_import_fuzz";
    std::filesystem::create_directories(d);
    return d.string();
  }();
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  mpq::fuzz::expect_clean("fuzz.onnx", [&] {
    mpq::import::parse_onnx(bytes, "fuzz.onnx", dir, mpq::import::ImportOptions{});
  });
  return 0;
}
