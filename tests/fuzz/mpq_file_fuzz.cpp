// Fuzz target: the integer runtime's .mpq loader, then one run() of what it accepts.
//
// Mutations are of two kinds (LLVMFuzzerCustomMutator): plain bytes anywhere in the file, and
// structure-aware ones that inflate the graph section, change the ONNX graph (an op renamed, an
// input dropped or rewired, an attribute, a dimension or an initializer changed, nodes
// reordered) and pack the file again with a correct header, so the lowering, not the header
// check, sees the damage. Every failure must be a one-line Status; nothing may crash.
#include <onnx/onnx_pb.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "fuzz_util.h"
#include "mpq/runtime/runtime.h"

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

namespace {

using mpq::runtime::Isa;
using mpq::runtime::Model;
using mpq::runtime::Status;

void check_message(const Status& s) {
  if (s.ok()) return;
  if (s.message.empty() || s.message.find('\n') != std::string::npos) {
    std::fprintf(stderr, "not a one-line error: '%s'\n", s.message.c_str());
    std::abort();
  }
}

const char* const kOps[] = {"Conv",
                            "Gemm",
                            "Add",
                            "Relu",
                            "Clip",
                            "QuantizeLinear",
                            "DequantizeLinear",
                            "GlobalAveragePool",
                            "ReduceMean",
                            "Flatten",
                            "Reshape",
                            "Squeeze",
                            "Slice",
                            "Pad",
                            "Cast",
                            "Constant",
                            "MaxPool",
                            "Identity"};
const int64_t kInts[] = {-1,
                         0,
                         1,
                         2,
                         3,
                         4,
                         7,
                         8,
                         63,
                         64,
                         65,
                         255,
                         1 << 16,
                         int64_t{1} << 31,
                         std::numeric_limits<int64_t>::max(),
                         std::numeric_limits<int64_t>::min()};
const float kFloats[] = {0.0f,
                         -1.0f,
                         1.0f,
                         6.0f,
                         1e30f,
                         -1e30f,
                         std::numeric_limits<float>::quiet_NaN(),
                         std::numeric_limits<float>::infinity()};

// Every value name of the graph, to rewire inputs to.
std::vector<std::string> value_names(const onnx::GraphProto& g) {
  std::vector<std::string> names;
  for (const auto& i : g.input()) names.push_back(i.name());
  for (const auto& i : g.initializer()) names.push_back(i.name());
  for (const auto& n : g.node())
    for (const auto& o : n.output()) names.push_back(o);
  names.push_back("");
  names.push_back("undefined_value");
  return names;
}

void mutate_attribute(onnx::NodeProto* n, std::mt19937_64& rng) {
  if (n->attribute_size() == 0 || rng() % 4 == 0) {  // add one the lowering reads
    static const char* const kNames[] = {"group", "pads", "strides", "dilations", "axes", "transB",
                                         "alpha", "min",  "max",     "value",     "mode"};
    onnx::AttributeProto* a = n->add_attribute();
    a->set_name(kNames[rng() % std::size(kNames)]);
    if (rng() % 2) {
      a->set_type(onnx::AttributeProto::INT);
      a->set_i(kInts[rng() % std::size(kInts)]);
    } else {
      a->set_type(onnx::AttributeProto::INTS);
      for (int k = rng() % 9; k > 0; --k) a->add_ints(kInts[rng() % std::size(kInts)]);
    }
    return;
  }
  const int index = static_cast<int>(rng() % n->attribute_size());
  onnx::AttributeProto* a = n->mutable_attribute(index);
  switch (rng() % 5) {
    case 0:
      n->mutable_attribute()->DeleteSubrange(index, 1);
      return;
    case 1:
      a->set_i(kInts[rng() % std::size(kInts)]);
      return;
    case 2:
      a->set_f(kFloats[rng() % std::size(kFloats)]);
      return;
    case 3:
      if (a->ints_size() > 0 && rng() % 2)
        a->set_ints(rng() % a->ints_size(), kInts[rng() % std::size(kInts)]);
      else if (a->ints_size() > 0)
        a->mutable_ints()->RemoveLast();
      else
        a->add_ints(kInts[rng() % std::size(kInts)]);
      return;
    default:
      if (a->has_t() && a->t().dims_size() > 0)
        a->mutable_t()->set_dims(rng() % a->t().dims_size(), kInts[rng() % std::size(kInts)]);
      else
        a->set_s(rng() % 2 ? "reflect" : "SAME_UPPER");
      return;
  }
}

void mutate_tensor(onnx::TensorProto* t, std::mt19937_64& rng) {
  switch (rng() % 4) {
    case 0:
      if (t->dims_size() > 0)
        t->set_dims(rng() % t->dims_size(), kInts[rng() % std::size(kInts)]);
      else
        t->add_dims(kInts[rng() % std::size(kInts)]);
      return;
    case 1:
      t->set_data_type(static_cast<int>(rng() % 17));
      return;
    case 2:
      if (t->has_raw_data() && !t->raw_data().empty())
        t->mutable_raw_data()->resize(rng() % t->raw_data().size());
      return;
    default:
      if (t->has_raw_data() && t->raw_data().size() >= 4) {
        float v = kFloats[rng() % std::size(kFloats)];
        size_t at = (rng() % (t->raw_data().size() / 4)) * 4;
        std::memcpy(t->mutable_raw_data()->data() + at, &v, 4);
      }
      return;
  }
}

// One structure-aware change to the graph; false when it found nothing to change.
bool mutate_graph(onnx::ModelProto* m, std::mt19937_64& rng) {
  onnx::GraphProto* g = m->mutable_graph();
  const int nodes = g->node_size();
  switch (rng() % 10) {
    case 0: {  // rename an op
      if (!nodes) return false;
      g->mutable_node(rng() % nodes)->set_op_type(kOps[rng() % std::size(kOps)]);
      return true;
    }
    case 1: {  // drop or empty an input
      if (!nodes) return false;
      onnx::NodeProto* n = g->mutable_node(rng() % nodes);
      if (n->input_size() == 0) return false;
      if (rng() % 2)
        n->mutable_input()->RemoveLast();
      else
        n->set_input(rng() % n->input_size(), "");
      return true;
    }
    case 2: {  // rewire an input
      if (!nodes) return false;
      onnx::NodeProto* n = g->mutable_node(rng() % nodes);
      auto names = value_names(*g);
      if (n->input_size() == 0 || rng() % 4 == 0)
        n->add_input(names[rng() % names.size()]);
      else
        n->set_input(rng() % n->input_size(), names[rng() % names.size()]);
      return true;
    }
    case 3:
    case 4: {
      if (!nodes) return false;
      mutate_attribute(g->mutable_node(rng() % nodes), rng);
      return true;
    }
    case 5: {  // an initializer or a Constant's tensor
      if (g->initializer_size() == 0) return false;
      mutate_tensor(g->mutable_initializer(rng() % g->initializer_size()), rng);
      return true;
    }
    case 6: {  // delete, duplicate or swap nodes
      if (nodes < 2) return false;
      int a = rng() % nodes, b = rng() % nodes;
      if (rng() % 3 == 0)
        g->mutable_node()->DeleteSubrange(a, 1);
      else if (rng() % 2)
        *g->add_node() = g->node(a);
      else
        g->mutable_node()->SwapElements(a, b);
      return true;
    }
    case 7: {  // the input's shape
      if (g->input_size() == 0) return false;
      auto* shape = g->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape();
      if (shape->dim_size() == 0 || rng() % 5 == 0) {
        shape->add_dim()->set_dim_value(kInts[rng() % std::size(kInts)]);
      } else {
        shape->mutable_dim(rng() % shape->dim_size())
            ->set_dim_value(kInts[rng() % std::size(kInts)]);
      }
      return true;
    }
    case 8: {  // the output
      if (g->output_size() == 0) return false;
      auto names = value_names(*g);
      g->mutable_output(0)->set_name(names[rng() % names.size()]);
      return true;
    }
    default: {  // an output name of a node
      if (!nodes) return false;
      onnx::NodeProto* n = g->mutable_node(rng() % nodes);
      auto names = value_names(*g);
      if (n->output_size() == 0)
        n->add_output(names[rng() % names.size()]);
      else
        n->set_output(0, names[rng() % names.size()]);
      return true;
    }
  }
}

}  // namespace

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size,
                                          unsigned int seed) {
  std::mt19937_64 rng(seed);
  mpq::fuzz::MpqParts parts;
  std::string bytes(reinterpret_cast<const char*>(data), size);
  if (rng() % 4 != 0 && mpq::fuzz::split_mpq(bytes, &parts)) {
    onnx::ModelProto m;
    bool changed = false;
    if (rng() % 5 != 0 && m.ParseFromString(parts.graph)) {
      for (int k = 1 + rng() % 3; k > 0; --k) changed = mutate_graph(&m, rng) || changed;
      if (changed) m.SerializeToString(&parts.graph);
    } else {  // bytes of the inflated graph
      size_t n = parts.graph.size();
      parts.graph.resize(n + 64);
      parts.graph.resize(
          LLVMFuzzerMutate(reinterpret_cast<uint8_t*>(parts.graph.data()), n, parts.graph.size()));
      changed = true;
    }
    if (changed) {
      std::string file = mpq::fuzz::join_mpq(parts);
      if (file.size() <= max_size) {
        std::memcpy(data, file.data(), file.size());
        return file.size();
      }
    }
  }
  return LLVMFuzzerMutate(data, size, max_size);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static mpq::fuzz::MemFile file("model.mpq");
  const std::string& path = file.write(data, size);
  // The kernel set and the thread count follow from the input, so a crash reproduces.
  const Isa sets[] = {Isa::kRef, Isa::kAvx2, Isa::kAvx512Vnni};
  mpq::runtime::Options options;
  options.isa = sets[size % 3];
  if (!mpq::runtime::isa_supported(options.isa)) options.isa = Isa::kRef;
  options.threads = 1 + (size / 3) % 2;
  std::unique_ptr<Model> model;
  Status s = Model::load(path, options, &model);
  check_message(s);
  if (!s.ok()) return 0;
  // Run what loads, when it is small enough to run quickly.
  const int64_t image = static_cast<int64_t>(model->channels()) * model->height() * model->width();
  if (model->activation_bytes_per_image() > (int64_t{16} << 20) || image > (1 << 20)) return 0;
  // Under ASan the scalar kernels take ~0.1 s per million MACs: keep every input well below a
  // second, so that a hang is a hang.
  int64_t macs = 0;
  for (const auto& step : model->steps()) macs += step.macs;
  const int64_t budget = options.isa == Isa::kRef ? (int64_t{4} << 20) : (int64_t{128} << 20);
  if (macs > budget) return 0;
  // 5 images on 2 threads take the sub-batch path.
  const int n = options.threads == 2 && macs * 5 <= budget ? 5 : 1;
  std::vector<float> input(static_cast<size_t>(image) * n);
  for (size_t i = 0; i < input.size(); ++i) input[i] = static_cast<float>((i * 37) % 255) / 64 - 2;
  std::vector<float> output(static_cast<size_t>(model->classes()) * n);
  check_message(model->run(input.data(), n, output.data()));
  return 0;
}
