// mpq bench MODEL.mpq --batch 1,128: the integer runtime's latency and throughput beside ONNX
// Runtime (npm onnxruntime-node, tools/ort/ort.js) on the float and W8A8 models, in one run.
// mpq latency-table MODEL.onnx -o lut.json: per-layer milliseconds in the runtime for every
// candidate (w_bits, a_bits), for `mpq search --budget latency=...`.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <random>

#include "common.h"
#include "mpq/allocation/cost_model.h"
#include "mpq/core/error.h"
#include "mpq/core/file.h"
#include "mpq/core/memory.h"
#include "mpq/core/progress.h"
#include "mpq/export/packed.h"
#include "mpq/export/quantized.h"
#include "runtime_cli.h"

namespace mpq::cli {
namespace {

std::string ort_dir() {
  const char* env = std::getenv("MPQ_ORT_DIR");
  return env ? env : MPQ_ORT_DIR;
}

// ONNX Runtime's throughput on `model` at n images (tools/ort/ort.js bench).
nlohmann::json ort_bench(const std::string& model, int n, int c, int h, int w, double seconds,
                         int threads) {
  std::string cmd = fmt::format("node '{}/ort.js' bench '{}' {},{},{},{} {} {} 2>&1", ort_dir(),
                                model, n, c, h, w, seconds, threads);
  FILE* pipe = popen(cmd.c_str(), "r");
  MPQ_CHECK(pipe, ErrorCode::kInternal, "cannot start node for ONNX Runtime");
  std::string out;
  char buf[4096];
  while (size_t got = fread(buf, 1, sizeof(buf), pipe)) out.append(buf, got);
  int rc = pclose(pipe);
  size_t brace = out.rfind("\n{");
  std::string line = out.substr(brace == std::string::npos ? 0 : brace + 1);
  MPQ_CHECK(rc == 0 && !line.empty() && line[0] == '{', ErrorCode::kBadFile,
            "ONNX Runtime failed on {} (run scripts/setup.sh for tools/ort): {}", model,
            out.substr(0, 300));
  return nlohmann::json::parse(line);
}

double cpu_mhz() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("cpu MHz", 0) == 0) return std::stod(line.substr(line.find(':') + 1));
  return 0;
}

// The int8 peak of the runtime's kernels on `threads` cores, GMAC/s, measured once: a loop of
// independent vpdpbusd (AVX-512 VNNI) or vpmaddubsw (AVX2).
double peak_gmacs(runtime::Isa isa, int threads) {
  static std::map<std::pair<int, int>, double> measured;
  auto key = std::make_pair(static_cast<int>(isa), threads);
  if (!measured.count(key))  // the best of a few runs: the machine is shared
    for (int i = 0; i < 2; ++i)
      measured[key] = std::max(measured[key], runtime::int8_peak_gmacs(isa, threads));
  return measured[key];
}

std::string wa(int w, int a) { return fmt::format("w{}a{}", w, a); }

// Per quantized layer: the milliseconds of its conv step plus the steps after it up to the
// next layer (requantize, add, clip, pooling); steps before the first layer go to the first.
std::map<std::string, double> layer_ms(const runtime::Model& m, int runs) {
  std::map<std::string, double> ms;
  const auto& steps = m.steps();
  const auto& sec = m.step_seconds();
  std::string current;
  double pending = 0;
  for (size_t i = 0; i < steps.size(); ++i) {
    const auto& s = steps[i];
    double t = 1000.0 * sec[i] / runs;
    bool layer = s.kind == "conv" || s.kind == "dwconv" || s.kind == "fc";
    if (layer) {
      current = s.name;
      ms[current] += t + pending;
      pending = 0;
    } else if (current.empty()) {
      pending += t;
    } else {
      ms[current] += t;
    }
  }
  return ms;
}

// Per step: name, kind, widths, MACs, ms per batch, share of the time, GMAC/s and the fraction
// of the int8 peak.
nlohmann::json profile_rows(const runtime::Model& m, int n, int runs) {
  const auto& steps = m.steps();
  const auto& sec = m.step_seconds();
  double total = 0;
  for (double s : sec) total += s;
  const double peak = peak_gmacs(m.isa(), m.threads());
  nlohmann::json rows = nlohmann::json::array();
  for (size_t i = 0; i < steps.size(); ++i) {
    const auto& s = steps[i];
    const double ms = 1000.0 * sec[i] / runs;
    const double gmacs = s.macs > 0 ? s.macs * n / (ms * 1e6) : 0;
    rows.push_back({{"step", s.name},
                    {"kind", s.kind},
                    {"w_bits", s.w_bits},
                    {"a_bits", s.a_bits},
                    {"macs_per_image", s.macs},
                    {"ms", ms},
                    {"share", sec[i] / total},
                    {"gmacs", gmacs},
                    {"fraction_of_int8_peak", s.macs > 0 ? gmacs / peak : 0.0}});
  }
  return rows;
}

void print_profile(const nlohmann::json& rows, int n, int runs) {
  fmt::print("\nper step at batch {} ({} runs):\n", n, runs);
  fmt::print("{:<40} {:<9} {:>4} {:>4} {:>8} {:>9} {:>6} {:>8} {:>7}\n", "step", "kind", "w", "a",
             "MMACs", "ms", "%", "GMAC/s", "% peak");
  for (const auto& r : rows) {
    const int w = r["w_bits"], a = r["a_bits"];
    fmt::print("{:<40} {:<9} {:>4} {:>4} {:>8.2f} {:>9.4f} {:>6.1f} {:>8.1f} {:>7.1f}\n",
               r["step"].get<std::string>().substr(0, 40), r["kind"].get<std::string>(),
               w ? std::to_string(w) : "", a ? std::to_string(a) : "",
               r["macs_per_image"].get<double>() / 1e6, r["ms"].get<double>(),
               100 * r["share"].get<double>(), r["gmacs"].get<double>(),
               100 * r["fraction_of_int8_peak"].get<double>());
  }
}

void add_bench_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "bench",
      "latency and throughput of a .mpq model on the integer runtime, beside ONNX Runtime");
  struct Opts {
    std::string model, float_model, w8a8_model, latency_table;
    std::vector<int> batches{1, 128};
    double seconds = 3;
    int threads = 2, repeat = 3;
    std::string isa = "auto";
    bool profile = false, json = false;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("model", o->model, "packed model (.mpq)")->required();
  cmd->add_option("--repeat", o->repeat,
                  "rounds, mpq and ONNX Runtime taking turns; each keeps its fastest")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--batch", o->batches, "batch sizes, e.g. 1,128")->delimiter(',');
  cmd->add_option("--seconds", o->seconds, "seconds per measurement")->check(CLI::PositiveNumber);
  cmd->add_option("--threads", o->threads, "threads")->check(CLI::PositiveNumber);
  cmd->add_option("--isa", o->isa, "kernels: auto, avx512vnni, avx2 or ref");
  cmd->add_option("--float", o->float_model, "the float ONNX model, run by ONNX Runtime");
  cmd->add_option("--w8a8", o->w8a8_model, "a W8A8 QCDQ ONNX model, run by ONNX Runtime");
  cmd->add_option("--latency-table", o->latency_table,
                  "check the latency this table (mpq latency-table) predicts for the model");
  cmd->add_flag("--profile", o->profile, "per-step times (and fraction of the int8 peak)");
  cmd->add_flag("--json", o->json, "print one JSON object with the results");
  cmd->callback([o] {
    set_quiet(o->json);
    for (int b : o->batches)
      MPQ_CHECK(b >= 1, ErrorCode::kInvalidArgument, "--batch {}: must be at least 1", b);
    for (const std::string& f : {o->float_model, o->w8a8_model, o->latency_table})
      MPQ_CHECK(f.empty() || std::filesystem::exists(f), ErrorCode::kBadFile, "{}: no such file",
                f);
    allocation::LatencyTable table;
    if (!o->latency_table.empty()) table = allocation::load_latency_table(o->latency_table);
    auto rt = load_runtime(o->model, o->threads, parse_isa(o->isa));
    const int c = rt->channels(), h = rt->height(), w = rt->width();
    int64_t macs = 0;
    for (const auto& s : rt->steps()) macs += s.macs;
    double peak = peak_gmacs(rt->isa(), rt->threads());
    log_line(
        fmt::format("{}: {} kernels, {} threads, {:.1f} M MACs per image, packed weights {} "
                    "bytes; int8 peak {:.0f} GMAC/s (measured; {} MHz nominal)",
                    o->model, runtime::isa_name(rt->isa()), rt->threads(), macs / 1e6,
                    rt->weight_bytes(), peak, cpu_mhz()));
    nlohmann::json rows = nlohmann::json::array();
    if (!o->json)
      fmt::print("{:>6}  {:<28} {:>10} {:>11} {:>10} {:>8}\n", "batch", "runtime", "ms/batch",
                 "images/s", "vs FP32", "% peak");
    for (int n : o->batches) {
      // The machine is shared: mpq and each reference take turns, `--repeat` rounds, and each
      // keeps its fastest round.
      Timing t;
      nlohmann::json fp32_best, w8a8_best;
      auto faster = [](const nlohmann::json& a, const nlohmann::json& b) {
        return a.is_null() || b["ms_per_batch"].get<double>() < a["ms_per_batch"].get<double>();
      };
      for (int round = 0; round < o->repeat; ++round) {
        Timing r = time_runtime(*rt, n, o->seconds, false);
        if (round == 0 || r.ms_per_batch < t.ms_per_batch) t = r;
        if (!o->float_model.empty()) {
          auto f = ort_bench(o->float_model, n, c, h, w, o->seconds, o->threads);
          if (faster(fp32_best, f)) fp32_best = f;
        }
        if (!o->w8a8_model.empty()) {
          auto q = ort_bench(o->w8a8_model, n, c, h, w, o->seconds, o->threads);
          if (faster(w8a8_best, q)) w8a8_best = q;
        }
      }
      double gmacs = macs * t.images_per_second / 1e9;
      nlohmann::json row = {{"batch", n},
                            {"mpq",
                             {{"ms_per_batch", t.ms_per_batch},
                              {"images_per_second", t.images_per_second},
                              {"runs", t.runs},
                              {"rounds", o->repeat},
                              {"fraction_of_int8_peak", gmacs / peak}}}};
      double fp32 = 0;
      if (!fp32_best.is_null()) {
        row["ort_fp32"] = fp32_best;
        fp32 = fp32_best["images_per_second"].get<double>();
      }
      if (!w8a8_best.is_null()) row["ort_w8a8"] = w8a8_best;
      auto ratio = [&](double ips) { return fp32 > 0 ? fmt::format("{:.2f}x", ips / fp32) : "-"; };
      if (!o->json) {
        fmt::print("{:>6}  {:<28} {:>10.3f} {:>11.0f} {:>10} {:>7.1f}%\n", n,
                   fmt::format("mpq ({})", runtime::isa_name(rt->isa())), t.ms_per_batch,
                   t.images_per_second, ratio(t.images_per_second), 100 * gmacs / peak);
        for (const char* key : {"ort_fp32", "ort_w8a8"})
          if (row.contains(key)) {
            double ips = row[key]["images_per_second"].get<double>();
            fmt::print("{:>6}  {:<28} {:>10.3f} {:>11.0f} {:>10} {:>8}\n", n,
                       std::string(key) == "ort_fp32" ? "ONNX Runtime FP32" : "ONNX Runtime W8A8",
                       row[key]["ms_per_batch"].get<double>(), ips, ratio(ips), "");
          }
      }
      if (!table.ms.empty()) {
        double predicted = 0;
        std::vector<std::string> missing;
        for (const auto& s : rt->steps()) {
          if (s.macs == 0) continue;
          auto l = table.ms.find(s.name);
          auto e = l == table.ms.end() ? decltype(l->second.end()){}
                                       : l->second.find(wa(s.w_bits, s.a_bits));
          if (l == table.ms.end() || e == l->second.end()) {
            missing.push_back(s.name + " " + wa(s.w_bits, s.a_bits));
            continue;
          }
          predicted += e->second;
        }
        MPQ_CHECK(missing.empty(), ErrorCode::kInvalidArgument,
                  "{}: no entry for {} (and {} more); measure it with mpq latency-table",
                  o->latency_table, missing[0], missing.size() - 1);
        row["latency_predicted_ms"] = predicted;
        row["latency_error"] = t.ms_per_batch / predicted - 1;
        if (!o->json)
          fmt::print("{:>6}  latency table {} predicts {:.3f} ms; measured {:.3f} ms ({:+.1f}%)\n",
                     n, o->latency_table, predicted, t.ms_per_batch,
                     100 * (t.ms_per_batch / predicted - 1));
      }
      if (o->profile) {  // a separate pass: the step timers cost a little
        Timing p = time_runtime(*rt, n, o->seconds, true);
        row["profile"] = profile_rows(*rt, n, p.runs);
        if (!o->json) print_profile(row["profile"], n, p.runs);
      }
      rows.push_back(row);
    }
    double rss = peak_rss_mb();
    if (o->json) {
      print_json({{"model", o->model},
                  {"isa", runtime::isa_name(rt->isa())},
                  {"threads", rt->threads()},
                  {"macs_per_image", macs},
                  {"int8_peak_gmacs", peak},
                  {"weight_bytes", rt->weight_bytes()},
                  {"buffer_bytes", rt->buffer_bytes()},
                  {"peak_rss_mb", rss},
                  {"results", rows}});
      return;
    }
    fmt::print(
        "runtime memory: packed weights {} bytes, activations and scratch {} bytes; peak RSS of "
        "this process (LibTorch and ONNX Runtime's node included) {:.0f} MB\n",
        rt->weight_bytes(), rt->buffer_bytes(), rss);
  });
}

void add_latency_table_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "latency-table", "per-layer latency on the integer runtime for every candidate width");
  struct Opts {
    std::string model, out;
    DataFlags data;
    QuantFlags quant;
    std::vector<int> w_candidates{2, 3, 4, 5, 6, 8}, a_candidates{4, 8};
    int batch = 1, threads = 2, repeat = 20;
    double seconds = 5;
    std::string isa = "auto";
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  o->quant.calib_count = 64;
  cmd->add_option("model", o->model, "float ONNX model (default: the embedded model)");
  cmd->add_option("-o,--output", o->out, "latency table JSON")->required();
  cmd->add_option("--calib", o->quant.calib,
                  "calibration images (a few; only shapes matter; default with no model: "
                  "Fashion-MNIST)");
  cmd->add_option("--calib-count", o->quant.calib_count, "calibration images used");
  o->data.add(*cmd, "(unused: preprocessing flags for --calib)");
  cmd->add_option("--w-candidates", o->w_candidates, "weight widths")->delimiter(',');
  cmd->add_option("--a-candidates", o->a_candidates, "activation widths")->delimiter(',');
  cmd->add_option("--latency-batch", o->batch, "batch size the latency is for")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--threads", o->threads, "threads")->check(CLI::PositiveNumber);
  cmd->add_option("--seconds", o->seconds, "seconds per candidate, over all rounds")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--repeat", o->repeat, "rounds over the candidates; each layer keeps its best")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--isa", o->isa,
                  "kernels the table is for: auto, avx512vnni, avx2 or ref (widths pay "
                  "differently on each)");
  cmd->add_flag("--json", o->json, "print the table as JSON too");
  cmd->callback([o] {
    set_quiet(o->json);
    const runtime::Isa isa = parse_isa(o->isa);
    for (int b : o->w_candidates)
      MPQ_CHECK(b >= 2 && b <= 8, ErrorCode::kInvalidArgument,
                "--w-candidates {}: the runtime's widths are 2..8", b);
    for (int b : o->a_candidates)
      MPQ_CHECK(b >= 2 && b <= 8, ErrorCode::kInvalidArgument,
                "--a-candidates {}: the runtime's widths are 2..8", b);
    MPQ_CHECK(!o->quant.calib.empty() || o->model.empty(), ErrorCode::kInvalidArgument,
              "--calib is required with a model, e.g. --calib cifar10:calib_train_5085.bin");
    check_output_dir(o->out);
    ir::Graph model = load_model(o->model);
    nlohmann::json layers = nlohmann::json::object(), totals = nlohmann::json::object();
    std::string tmp = o->out + ".tmp.mpq";
    int done = 0;
    const int total = static_cast<int>(o->w_candidates.size() * o->a_candidates.size());
    // Quantize every candidate first, then time them in turns, `--repeat` rounds, keeping each
    // layer's fastest round: the machine is shared, and its speed drifts within a minute.
    std::vector<std::pair<std::string, std::unique_ptr<runtime::Model>>> candidates;
    for (int w : o->w_candidates)
      for (int a : o->a_candidates) {
        QuantFlags q = o->quant;
        q.w_bits = w, q.a_bits = a, q.first_last_bits = 0;
        q.observer = "minmax", q.weight_observer = "minmax";
        quant::QuantSim sim = q.quantize(model, o->model, o->data, false).sim;
        export_::save_packed(export_::export_quantized(sim), sim, tmp);
        candidates.emplace_back(wa(w, a), load_runtime(tmp, o->threads, isa));
        std::filesystem::remove(tmp);
        log_line(fmt::format("[{}/{}] quantized {}", ++done, total, wa(w, a)));
      }
    std::vector<size_t> order(candidates.size());
    std::iota(order.begin(), order.end(), 0);
    std::mt19937 shuffle_rng(7);
    for (int round = 0; round < o->repeat; ++round) {
      // A new order every round: periodic interference must not always hit the same candidate.
      std::shuffle(order.begin(), order.end(), shuffle_rng);
      for (size_t index : order) {
        auto& [key, rt] = candidates[index];
        Timing t = time_runtime(*rt, o->batch, o->seconds / o->repeat, true);
        for (auto& [name, ms] : layer_ms(*rt, t.runs))
          if (round == 0 || ms < layers[name][key].get<double>()) layers[name][key] = ms;
        if (round == 0 || t.ms_per_batch < totals[key].get<double>()) totals[key] = t.ms_per_batch;
      }
      log_line(fmt::format("round {}/{} timed", round + 1, o->repeat));
    }
    for (auto& [key, rt] : candidates)
      log_line(
          fmt::format("{}: {:.3f} ms per batch of {}", key, totals[key].get<double>(), o->batch));
    nlohmann::json j = {{"unit", "ms"},
                        {"model", o->model.empty() ? kEmbeddedName : o->model},
                        {"batch", o->batch},
                        {"threads", o->threads},
                        {"isa", runtime::isa_name(candidates.front().second->isa())},
                        {"end_to_end", totals},
                        {"layers", layers}};
    write_file_atomic(o->out, j.dump(1) + "\n");
    if (o->json)
      print_json(j);
    else
      fmt::print("wrote {}: {} layers x {} candidates\n", o->out, layers.size(), total);
  });
}

}  // namespace

Timing time_runtime(runtime::Model& m, int n, double seconds, bool profile) {
  std::vector<float> input(static_cast<size_t>(n) * m.channels() * m.height() * m.width());
  std::mt19937 gen(1);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (float& v : input) v = dist(gen);
  std::vector<float> out(static_cast<size_t>(n) * m.classes());
  for (int i = 0; i < 3; ++i) m.run(input.data(), n, out.data());
  m.clear_profile();
  m.set_profiling(profile);
  Timing t;
  auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  while (elapsed < seconds || t.runs < 5) {
    m.run(input.data(), n, out.data());
    ++t.runs;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  m.set_profiling(false);
  t.ms_per_batch = 1000 * elapsed / t.runs;
  t.images_per_second = n * t.runs / elapsed;
  return t;
}

void add_bench(CLI::App& app) { add_bench_command(app); }
void add_latency_table(CLI::App& app) { add_latency_table_command(app); }

}  // namespace mpq::cli
