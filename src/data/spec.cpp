#include <sstream>

#include "mpq/core/error.h"
#include "mpq/data/dataset.h"

namespace mpq::data {
namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, sep)) out.push_back(item);
  return out;
}

int64_t parse_count(const std::string& text, const std::string& spec, const char* what) {
  try {
    size_t used = 0;
    int64_t v = std::stoll(text, &used);
    if (used == text.size() && v >= 0) return v;
  } catch (const std::exception&) {
  }
  fail(ErrorCode::kInvalidArgument, "data spec '{}': {} '{}' must be a non-negative integer", spec,
       what, text);
}

}  // namespace

DataSpec parse_spec(const std::string& text) {
  const char* usage =
      "expected cifar10:FILE, idx:IMAGES,LABELS or imagefolder:DIR, optionally "
      "followed by @N or @N:SEED";
  DataSpec spec;
  spec.text = text;
  auto colon = text.find(':');
  MPQ_CHECK(colon != std::string::npos && colon > 0, ErrorCode::kInvalidArgument,
            "data spec '{}': no kind; {}", text, usage);
  spec.kind = text.substr(0, colon);
  std::string rest = text.substr(colon + 1);
  auto at = rest.rfind('@');
  if (at != std::string::npos) {
    auto parts = split(rest.substr(at + 1), ':');
    MPQ_CHECK(!parts.empty() && parts.size() <= 2, ErrorCode::kInvalidArgument,
              "data spec '{}': subset '{}': {}", text, rest.substr(at), usage);
    spec.count = parse_count(parts[0], text, "count");
    if (parts.size() == 2) spec.seed = parse_count(parts[1], text, "seed");
    rest = rest.substr(0, at);
  }
  spec.paths = split(rest, ',');
  MPQ_CHECK(!spec.paths.empty() && !spec.paths[0].empty(), ErrorCode::kInvalidArgument,
            "data spec '{}': no path; {}", text, usage);
  if (spec.kind == "cifar10") {
    MPQ_CHECK(spec.paths.size() == 1, ErrorCode::kInvalidArgument,
              "data spec '{}': cifar10 takes one file", text);
  } else if (spec.kind == "idx") {
    MPQ_CHECK(spec.paths.size() == 2, ErrorCode::kInvalidArgument,
              "data spec '{}': idx takes IMAGES,LABELS", text);
  } else if (spec.kind == "imagefolder") {
    MPQ_CHECK(spec.paths.size() <= 2, ErrorCode::kInvalidArgument,
              "data spec '{}': imagefolder takes DIR or DIR,LABELS.csv", text);
  } else {
    fail(ErrorCode::kInvalidArgument,
         "data spec '{}': unknown kind '{}'; available: cifar10, idx, "
         "imagefolder",
         text, spec.kind);
  }
  return spec;
}

}  // namespace mpq::data
