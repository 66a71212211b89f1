// A name -> factory registry per extension point (ops, metrics, allocators, ...).
//
//   MPQ_REGISTER(OpDef, "Conv", make_conv);  // in src/import/onnx/ops/conv.cpp
//   Registry<OpDef>::get("Conv")
//
// The file name, the registry key and the command-line value are the same string.
// Registering folders are CMake OBJECT libraries so the linker keeps the registrars.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "mpq/core/error.h"

namespace mpq {

template <typename T>
class Registry {
 public:
  using Factory = std::function<std::unique_ptr<T>()>;

  static bool add(const std::string& name, Factory factory) {
    entries()[name] = std::move(factory);
    return true;
  }
  static bool contains(const std::string& name) { return entries().count(name) > 0; }
  static std::unique_ptr<T> create(const std::string& name, const std::string& what) {
    auto it = entries().find(name);
    if (it == entries().end()) {
      fail(ErrorCode::kInvalidArgument, "unknown {} '{}'; available: {}", what, name, list());
    }
    return it->second();
  }
  static std::vector<std::string> names() {
    std::vector<std::string> out;
    for (const auto& [name, _] : entries()) out.push_back(name);
    return out;
  }
  static std::string list() {
    std::string out;
    for (const auto& [name, _] : entries()) out += (out.empty() ? "" : ", ") + name;
    return out;
  }

 private:
  static std::map<std::string, Factory>& entries() {
    static std::map<std::string, Factory> map;
    return map;
  }
};

}  // namespace mpq

#define MPQ_CONCAT_INNER(a, b) a##b
#define MPQ_CONCAT(a, b) MPQ_CONCAT_INNER(a, b)
#define MPQ_REGISTER(Base, name, Derived)                   \
  static const bool MPQ_CONCAT(mpq_registered_, __LINE__) = \
      ::mpq::Registry<Base>::add(name, [] { return std::unique_ptr<Base>(new Derived()); })
