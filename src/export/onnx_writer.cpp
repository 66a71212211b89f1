#include "mpq/export/onnx_writer.h"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <algorithm>

#include "../import/onnx/tensor_proto.h"
#include "mpq/core/error.h"
#include "mpq/core/file.h"

namespace mpq::export_ {
namespace {

void set_attribute(const std::string& name, const ir::AttrValue& value, onnx::AttributeProto& a) {
  a.set_name(name);
  if (auto* v = std::get_if<int64_t>(&value)) {
    a.set_type(onnx::AttributeProto::INT);
    a.set_i(*v);
  } else if (auto* v = std::get_if<double>(&value)) {
    a.set_type(onnx::AttributeProto::FLOAT);
    a.set_f(static_cast<float>(*v));
  } else if (auto* v = std::get_if<std::string>(&value)) {
    a.set_type(onnx::AttributeProto::STRING);
    a.set_s(*v);
  } else if (auto* v = std::get_if<std::vector<int64_t>>(&value)) {
    a.set_type(onnx::AttributeProto::INTS);
    for (int64_t x : *v) a.add_ints(x);
  } else if (auto* v = std::get_if<std::vector<double>>(&value)) {
    a.set_type(onnx::AttributeProto::FLOATS);
    for (double x : *v) a.add_floats(static_cast<float>(x));
  } else {
    a.set_type(onnx::AttributeProto::TENSOR);
    import::tensor_to_proto(std::get<at::Tensor>(value), "", *a.mutable_t());
  }
}

void set_value_info(const ir::Value& value, onnx::ValueInfoProto& info) {
  info.set_name(value.name);
  auto* tensor_type = info.mutable_type()->mutable_tensor_type();
  tensor_type->set_elem_type(onnx::TensorProto::FLOAT);
  auto* shape = tensor_type->mutable_shape();
  for (size_t i = 0; i < value.shape.size(); ++i) {
    auto* dim = shape->add_dim();
    if (value.shape[i] >= 0)
      dim->set_dim_value(value.shape[i]);
    else
      dim->set_dim_param(i == 0 ? "N" : fmt::format("d{}", i));
  }
}

}  // namespace

std::string to_onnx_bytes(const ir::Graph& graph) {
  onnx::ModelProto model;
  model.set_ir_version(7);
  model.set_producer_name("mpq");
  auto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(graph.opset);
  for (const auto& [k, v] : graph.metadata) {
    auto* kv = model.add_metadata_props();
    kv->set_key(k);
    kv->set_value(v);
  }
  onnx::GraphProto* g = model.mutable_graph();
  g->set_name("mpq");
  for (int v : graph.inputs) set_value_info(graph.values[v], *g->add_input());
  for (int v : graph.outputs) set_value_info(graph.values[v], *g->add_output());
  // Initializers in value order, for a deterministic file.
  std::vector<int> inits;
  for (const auto& [v, _] : graph.initializers()) inits.push_back(v);
  std::sort(inits.begin(), inits.end());
  for (int v : inits)
    import::tensor_to_proto(graph.initializer(v), graph.values[v].name, *g->add_initializer());
  for (const ir::Node& node : graph.nodes) {
    onnx::NodeProto* n = g->add_node();
    n->set_name(node.name);
    n->set_op_type(node.op);
    for (int in : node.inputs) n->add_input(in >= 0 ? graph.values[in].name : "");
    for (int out : node.outputs) n->add_output(graph.values[out].name);
    for (const auto& [name, value] : node.attrs) set_attribute(name, value, *n->add_attribute());
  }
  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    std::string what = e.what();
    std::replace(what.begin(), what.end(), '\n', ' ');
    fail(ErrorCode::kInternal, "the ONNX model mpq built fails onnx::checker: {}", what);
  }
  std::string bytes;
  model.SerializeToString(&bytes);
  return bytes;
}

void save_onnx(const ir::Graph& graph, const std::string& path) {
  write_file_atomic(path, to_onnx_bytes(graph));
}

}  // namespace mpq::export_
