// TensorProto <-> at::Tensor, shared by the importer and the ONNX writer.
#pragma once

#include <ATen/ATen.h>
#include <onnx/onnx_pb.h>

#include <string>

namespace mpq::import {

// `where` names the tensor in errors; external data is read relative to `base_dir`.
at::Tensor tensor_from_proto(const onnx::TensorProto& proto, const std::string& where,
                             const std::string& base_dir);
void tensor_to_proto(const at::Tensor& tensor, const std::string& name, onnx::TensorProto& proto);

}  // namespace mpq::import
