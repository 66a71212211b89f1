// mpq::Error and MPQ_CHECK: every failure a person can act on.
//
// A message names the file, node, layer or value, the bad value and the rule it broke,
// in one line:  "model.onnx: node 'conv1' (Conv): attribute 'group' = 0: must be >= 1".
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace mpq {

enum class ErrorCode {
  kInvalidArgument = 1,  // a flag, spec or option is wrong
  kBadFile = 2,          // a file is missing, unreadable or malformed
  kUnsupported = 3,      // valid input that mpq cannot handle (yet)
  kShapeMismatch = 4,    // data and model disagree
  kInternal = 5,
};

// `text` with control characters escaped (\n, \t, \xNN): names read from a file (a node, a
// tensor, a CSV field) may hold anything, and an error stays one line whatever they hold.
inline std::string one_line(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (c >= 0x20 && c != 0x7f) {
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else {
      const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message)
      : std::runtime_error(one_line(message)), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

template <typename... Args>
[[noreturn]] void fail(ErrorCode code, fmt::format_string<Args...> format, Args&&... args) {
  throw Error(code, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace mpq

// MPQ_CHECK(cond, code, "fmt", args...): throws mpq::Error with the formatted message.
#define MPQ_CHECK(cond, code, ...)               \
  do {                                           \
    if (!(cond)) ::mpq::fail(code, __VA_ARGS__); \
  } while (0)
