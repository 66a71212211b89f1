#include <onnx/onnx_pb.h>

#include <filesystem>

#include "mpq/core/error.h"
#include "mpq/core/file.h"
#include "mpq/exec/op.h"
#include "mpq/import/onnx_importer.h"
#include "mpq/ir/passes.h"
#include "tensor_proto.h"

namespace mpq::import {
namespace {

ir::AttrValue convert_attribute(const onnx::AttributeProto& a, const std::string& where,
                                const std::string& base_dir) {
  switch (a.type()) {
    case onnx::AttributeProto::INT:
      return a.i();
    case onnx::AttributeProto::FLOAT:
      return static_cast<double>(a.f());
    case onnx::AttributeProto::STRING:
      return a.s();
    case onnx::AttributeProto::INTS:
      return std::vector<int64_t>(a.ints().begin(), a.ints().end());
    case onnx::AttributeProto::FLOATS:
      return std::vector<double>(a.floats().begin(), a.floats().end());
    case onnx::AttributeProto::TENSOR:
      return tensor_from_proto(a.t(), fmt::format("{}: attribute '{}'", where, a.name()), base_dir);
    default:
      fail(ErrorCode::kUnsupported, "{}: attribute '{}' has a type mpq does not read ({})", where,
           a.name(), static_cast<int>(a.type()));
  }
}

std::vector<int64_t> declared_shape(const onnx::ValueInfoProto& info) {
  std::vector<int64_t> shape;
  if (!info.type().has_tensor_type() || !info.type().tensor_type().has_shape()) return shape;
  for (const auto& d : info.type().tensor_type().shape().dim())
    shape.push_back(d.has_dim_value() ? d.dim_value() : -1);
  return shape;
}

}  // namespace

namespace {

ir::Graph parse(const std::string& bytes, const std::string& source, const std::string& base_dir,
                const ImportOptions& options) {
  onnx::ModelProto model;
  MPQ_CHECK(model.ParseFromString(bytes), ErrorCode::kBadFile,
            "{}: not a valid ONNX model (the protobuf does not parse: truncated, or not ONNX)",
            source);
  MPQ_CHECK(model.has_graph() && model.graph().node_size() > 0, ErrorCode::kBadFile,
            "{}: not a valid ONNX model (no graph nodes: truncated, or not ONNX)", source);
  const onnx::GraphProto& g = model.graph();

  ir::Graph graph;
  graph.source = source;
  for (const auto& opset : model.opset_import())
    if (opset.domain().empty() || opset.domain() == "ai.onnx") graph.opset = opset.version();
  for (const auto& kv : model.metadata_props()) graph.metadata[kv.key()] = kv.value();

  for (const auto& init : g.initializer()) {
    int v = graph.add_value(init.name());
    at::Tensor t =
        tensor_from_proto(init, fmt::format("{}: initializer '{}'", source, init.name()), base_dir);
    if (t.is_floating_point() && t.numel() > 0) {
      int64_t bad = t.isfinite().logical_not().sum().item<int64_t>();
      MPQ_CHECK(bad == 0, ErrorCode::kBadFile,
                "{}: initializer '{}' holds {} NaN/Inf value(s) of {}; weights must be finite",
                source, init.name(), bad, t.numel());
    }
    graph.set_initializer(v, t);
  }
  for (const auto& input : g.input()) {
    int v = graph.add_value(input.name());
    if (graph.is_initializer(v)) continue;
    graph.values[v].shape = declared_shape(input);
    graph.inputs.push_back(v);
  }
  for (int i = 0; i < g.node_size(); ++i) {
    const onnx::NodeProto& n = g.node(i);
    ir::Node node;
    node.op = n.op_type();
    node.name = !n.name().empty() ? n.name()
                : n.output_size() ? n.output(0)
                                  : fmt::format("{}_{}", n.op_type(), i);
    MPQ_CHECK(n.domain().empty() || n.domain() == "ai.onnx", ErrorCode::kUnsupported,
              "{}: {} is in domain '{}'; only standard ONNX ops are supported", source,
              node.where(), n.domain());
    MPQ_CHECK(Registry<exec::OpDef>::contains(node.op), ErrorCode::kUnsupported,
              "{}: unsupported op '{}' in node '{}'; supported: {}", source, node.op, node.name,
              exec::supported_ops());
    std::string where = fmt::format("{}: {}", source, node.where());
    for (const auto& in : n.input()) node.inputs.push_back(in.empty() ? -1 : graph.add_value(in));
    for (const auto& out : n.output()) node.outputs.push_back(graph.add_value(out));
    for (const auto& a : n.attribute())
      node.attrs[a.name()] = convert_attribute(a, where, base_dir);
    auto def = Registry<exec::OpDef>::create(node.op, "op");
    const int required = def->required_inputs();
    for (int k = 0; k < required; ++k)
      MPQ_CHECK(k < static_cast<int>(node.inputs.size()) && node.inputs[k] >= 0,
                ErrorCode::kBadFile, "{}: input {} is missing ({} needs {})", where, k, node.op,
                required);
    MPQ_CHECK(n.output_size() > 0 && !n.output(0).empty(), ErrorCode::kBadFile,
              "{}: the node has no output", where);
    try {
      def->check(node, graph);
    } catch (const Error& e) {
      throw Error(e.code(), fmt::format("{}: {}", source, e.what()));
    }
    graph.add_node(std::move(node));
  }
  for (const auto& output : g.output()) {
    int v = graph.find_value(output.name());
    MPQ_CHECK(v >= 0, ErrorCode::kBadFile, "{}: graph output '{}' is produced by no node", source,
              output.name());
    graph.values[v].shape = declared_shape(output);
    graph.outputs.push_back(v);
  }
  MPQ_CHECK(!graph.inputs.empty(), ErrorCode::kBadFile, "{}: the graph has no input", source);

  graph.topo_sort();
  if (options.fold_constants) {
    ir::fold_constants(graph);
    ir::fold_pad_into_conv(graph);
  }
  graph.remove_dead();
  return graph;
}

}  // namespace

ir::Graph parse_onnx(const std::string& bytes, const std::string& source,
                     const std::string& base_dir, const ImportOptions& options) {
  try {
    return parse(bytes, source, base_dir, options);
  } catch (const c10::Error& e) {  // an ATen check the importer's own checks did not foresee
    std::string what = e.what_without_backtrace();
    fail(ErrorCode::kBadFile, "{}: not a model mpq can read: {}", source,
         what.substr(0, what.find('\n')));
  }
}

ir::Graph load_onnx(const std::string& path, const ImportOptions& options) {
  std::string bytes = read_file(path, "ONNX model");
  MPQ_CHECK(!bytes.empty(), ErrorCode::kBadFile, "{}: the file is empty, not an ONNX model", path);
  std::string base_dir = std::filesystem::path(path).parent_path().string();
  return parse_onnx(bytes, path, base_dir.empty() ? "." : base_dir, options);
}

}  // namespace mpq::import
