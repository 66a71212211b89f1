#include "tensor_proto.h"

#include <cstring>
#include <filesystem>
#include <fstream>

#include "mpq/core/error.h"
#include "ops/op_util.h"

namespace mpq::import {
namespace {

at::Tensor from_bytes(const char* data, size_t size, at::IntArrayRef dims, at::ScalarType type,
                      const std::string& where) {
  int64_t numel = 1;
  for (int64_t d : dims) numel *= d;
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
  int64_t numel = 1;
  for (int64_t d : dims) numel *= d;
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
      if (kv.key() == "offset") offset = std::stoll(kv.value());
      if (kv.key() == "length") length = std::stoll(kv.value());
    }
    MPQ_CHECK(!location.empty(), ErrorCode::kBadFile,
              "{}: external data without a 'location' entry", where);
    std::filesystem::path file = std::filesystem::path(base_dir) / location;
    MPQ_CHECK(std::filesystem::exists(file), ErrorCode::kBadFile,
              "{}: external data file '{}' is missing (it must sit beside the model)", where,
              file.string());
    std::ifstream in(file, std::ios::binary);
    in.seekg(0, std::ios::end);
    int64_t file_size = in.tellg();
    if (length < 0) length = file_size - offset;
    MPQ_CHECK(offset >= 0 && offset + length <= file_size, ErrorCode::kBadFile,
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
