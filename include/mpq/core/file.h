// Files: read whole, write atomically (temporary file + rename), so that a failure never
// leaves a half-written output and never clobbers what was there.
#pragma once

#include <string>

namespace mpq {

std::string read_file(const std::string& path, const std::string& what = "file");
void write_file_atomic(const std::string& path, const std::string& bytes);
bool file_exists(const std::string& path);

}  // namespace mpq
