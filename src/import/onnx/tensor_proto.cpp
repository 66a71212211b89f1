#include "tensor_proto.h"

#include <fmt/ranges.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "mpq/core/error.h"
#include "ops/op_util.h"

namespace mpq::import {
namespace {

// The element count of `dims` (checked non-negative); an error past 2^40 elements, which no
// file can hold and whose product would overflow.
int64_t element_count(at::IntArrayRef dims, const std::string& where) {
  constexpr int64_t kMax = int64_t{1} << 40;
  int64_t numel = 1, nonzero = 1;  // a zero dimension does not excuse a huge one beside it
  for (int64_t d : dims) {
    MPQ_CHECK(d <= kMax && (d == 0 || nonzero <= kMax / d), ErrorCode::kBadFile,
              "{}: shape [{}] has more than 2^40 elements", where, fmt::join(dims, ", "));
    numel *= d;
    if (d > 0) nonzero *= d;
  }
  return numel;
}

// An external-data entry's offset or length: a non-negative decimal integer.
int64_t external_int(const std::string& key, const std::string& value, const std::string& where) {
  int64_t v = -1;
  try {
    size_t used = 0;
    v = std::stoll(value, &used);
    if (used != value.size()) v = -1;
  } catch (const std::exception&) {
  }
  MPQ_CHECK(v >= 0, ErrorCode::kBadFile,
            "{}: external data '{}' = '{}': must be a non-negative integer", where, key, value);
  return v;
}

at::Tensor from_bytes(const char* data, size_t size, at::IntArrayRef dims, at::ScalarType type,
                      const std::string& where) {
  const int64_t numel = element_count(dims, where);
  size_t expected = static_cast<size_t>(numel) * c10::elementSize(type);
  MPQ_CHECK(size == expected, ErrorCode::kBadFile,
            "{}: holds {} bytes of data but its shape needs {} (truncated file?)", where, size,
            expected);
  at::Tensor t = at::empty(dims, at::TensorOptions().dtype(type));
  if (size) std::memcpy(t.data_ptr(), data, size);
  return t;
}

template <typename Field>
at::Tensor from_field(const Field& field, at::IntArrayRef dims, at::ScalarType field_type,
                      at::ScalarType type, const std::string& where) {
  const int64_t numel = element_count(dims, where);
  MPQ_CHECK(field.size() == numel, ErrorCode::kBadFile,
            "{}: holds {} values but its shape needs {}", where, field.size(), numel);
  at::Tensor t = at::empty({numel}, at::TensorOptions().dtype(field_type));
  using T = typename Field::value_type;
  if (numel) std::memcpy(t.data_ptr(), field.data(), numel * sizeof(T));
  return t.to(type).reshape(dims);
}

}  // namespace

at::Tensor tensor_from_proto(const onnx::TensorProto& p, const std::string& where,
                             const std::string& base_dir) {
  auto type = exec::scalar_type_from_onnx(p.data_type());
  MPQ_CHECK(type.has_value(), ErrorCode::kUnsupported, "{}: element type {} is not supported",
            where, p.data_type());
  std::vector<int64_t> dims(p.dims().begin(), p.dims().end());
  for (int64_t d : dims)
    MPQ_CHECK(d >= 0, ErrorCode::kBadFile, "{}: negative dimension {}", where, d);

  if (p.data_location() == onnx::TensorProto::EXTERNAL) {
    std::string location;
    int64_t offset = 0, length = -1;
    for (const auto& kv : p.external_data()) {
      if (kv.key() == "location") location = kv.value();
      if (kv.key() == "offset") offset = external_int("offset", kv.value(), where);
      if (kv.key() == "length") length = external_int("length", kv.value(), where);
    }
    MPQ_CHECK(!location.empty(), ErrorCode::kBadFile,
              "{}: external data without a 'location' entry", where);
    // ONNX's rule: a relative path inside the model's folder.
    const std::filesystem::path relative(location);
    bool inside = relative.is_relative();
    for (const auto& part : relative) inside = inside && part != "..";
    MPQ_CHECK(inside, ErrorCode::kBadFile,
              "{}: external data location '{}' must be a path inside the model's folder", where,
              location);
    std::filesystem::path file = std::filesystem::path(base_dir) / relative;
    MPQ_CHECK(std::filesystem::exists(file), ErrorCode::kBadFile,
              "{}: external data file '{}' is missing (it must sit beside the model)", where,
              file.string());
    MPQ_CHECK(std::filesystem::is_regular_file(file), ErrorCode::kBadFile,
              "{}: external data '{}' is not a regular file", where, file.string());
    std::ifstream in(file, std::ios::binary);
    in.seekg(0, std::ios::end);
    int64_t file_size = in.tellg();
    MPQ_CHECK(in.good() && file_size >= 0, ErrorCode::kBadFile,
              "{}: cannot read external data file '{}'", where, file.string());
    MPQ_CHECK(offset <= file_size, ErrorCode::kBadFile,
              "{}: external data '{}' has {} bytes, needs offset {}", where, file.string(),
              file_size, offset);
    if (length < 0) length = file_size - offset;
    MPQ_CHECK(length <= file_size - offset, ErrorCode::kBadFile,
              "{}: external data '{}' has {} bytes, needs offset {} + length {}", where,
              file.string(), file_size, offset, length);
    std::string bytes(static_cast<size_t>(length), '\0');
    in.seekg(offset);
    in.read(bytes.data(), length);
    return from_bytes(bytes.data(), bytes.size(), dims, *type, where);
  }
  if (p.has_raw_data())
    return from_bytes(p.raw_data().data(), p.raw_data().size(), dims, *type, where);
  switch (p.data_type()) {
    case onnx::TensorProto::FLOAT:
      return from_field(p.float_data(), dims, at::kFloat, *type, where);
    case onnx::TensorProto::DOUBLE:
      return from_field(p.double_data(), dims, at::kDouble, *type, where);
    case onnx::TensorProto::INT64:
      return from_field(p.int64_data(), dims, at::kLong, *type, where);
    case onnx::TensorProto::FLOAT16:
    case onnx::TensorProto::BFLOAT16: {
      at::Tensor bits = from_field(p.int32_data(), dims, at::kInt, at::kShort, where);
      return bits.view(*type);
    }
    default:
      return from_field(p.int32_data(), dims, at::kInt, *type, where);
  }
}

void tensor_to_proto(const at::Tensor& tensor, const std::string& name, onnx::TensorProto& p) {
  at::Tensor t = tensor.detach().contiguous().cpu();
  p.set_name(name);
  int32_t type = 0;
  switch (t.scalar_type()) {
    case at::kFloat:
      type = onnx::TensorProto::FLOAT;
      break;
    case at::kByte:
      type = onnx::TensorProto::UINT8;
      break;
    case at::kChar:
      type = onnx::TensorProto::INT8;
      break;
    case at::kShort:
      type = onnx::TensorProto::INT16;
      break;
    case at::kInt:
      type = onnx::TensorProto::INT32;
      break;
    case at::kLong:
      type = onnx::TensorProto::INT64;
      break;
    case at::kBool:
      type = onnx::TensorProto::BOOL;
      break;
    case at::kHalf:
      type = onnx::TensorProto::FLOAT16;
      break;
    case at::kDouble:
      type = onnx::TensorProto::DOUBLE;
      break;
    default:
      fail(ErrorCode::kUnsupported, "tensor '{}': cannot write element type {}", name,
           c10::toString(t.scalar_type()));
  }
  p.set_data_type(type);
  for (int64_t d : t.sizes()) p.add_dims(d);
  p.set_raw_data(std::string(static_cast<const char*>(t.data_ptr()), t.nbytes()));
}

}  // namespace mpq::import
