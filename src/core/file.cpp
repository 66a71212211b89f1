#include "mpq/core/file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "mpq/core/error.h"

namespace mpq {

std::string read_file(const std::string& path, const std::string& what) {
  MPQ_CHECK(std::filesystem::exists(path), ErrorCode::kBadFile, "{}: {} does not exist", path,
            what);
  MPQ_CHECK(!std::filesystem::is_directory(path), ErrorCode::kBadFile,
            "{}: is a directory, expected a {}", path, what);
  // A device or pipe (/dev/zero, a FIFO) could be read forever.
  MPQ_CHECK(std::filesystem::is_regular_file(path), ErrorCode::kBadFile,
            "{}: is not a regular file, expected a {}", path, what);
  std::ifstream in(path, std::ios::binary);
  MPQ_CHECK(in.good(), ErrorCode::kBadFile, "{}: cannot open {}: {}", path, what,
            std::strerror(errno));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  std::filesystem::path target(path);
  std::filesystem::path dir = target.has_parent_path() ? target.parent_path() : ".";
  MPQ_CHECK(std::filesystem::is_directory(dir), ErrorCode::kInvalidArgument,
            "{}: output directory '{}' does not exist", path, dir.string());
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    MPQ_CHECK(out.good(), ErrorCode::kBadFile, "{}: cannot write: {}", tmp, std::strerror(errno));
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out.good()) {
      std::remove(tmp.c_str());
      fail(ErrorCode::kBadFile, "{}: write failed: {}", tmp, std::strerror(errno));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    fail(ErrorCode::kBadFile, "{}: cannot rename from {}: {}", path, tmp, std::strerror(errno));
  }
}

bool file_exists(const std::string& path) { return std::filesystem::exists(path); }

}  // namespace mpq
