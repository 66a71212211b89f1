// Fuzz target: the JSON files mpq reads back: a bit plan, a sensitivity report, compress.json
// (--resume) and a latency table. The first byte picks the reader; the rest is the file.
#include "fuzz_check.h"
#include "fuzz_util.h"
#include "mpq/allocation/bit_plan.h"
#include "mpq/allocation/cost_model.h"
#include "mpq/pipeline/compress_state.h"
#include "mpq/sensitivity/metric.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static mpq::fuzz::MemFile file("file.json");
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::string& path = file.write(text);
  switch (data[0] % 4) {
    case 0:
      mpq::fuzz::expect_clean("plan.json",
                              [&] { mpq::allocation::parse_bit_plan(text, "plan.json"); });
      break;
    case 1:
      mpq::fuzz::expect_clean(path, [&] { mpq::sensitivity::load_report(path); });
      break;
    case 2:
      mpq::fuzz::expect_clean("compress.json", [&] {
        auto state = mpq::pipeline::parse_compress_state(text, "compress.json");
        mpq::pipeline::config_difference(state.config, nlohmann::json{{"budgets", "avg-w-bits=4"}});
      });
      break;
    default:
      mpq::fuzz::expect_clean(path, [&] { mpq::allocation::load_latency_table(path); });
      break;
  }
  return 0;
}
