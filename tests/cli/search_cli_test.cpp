// mpq sensitivity and mpq search on the embedded model: the report, a plan that meets its
// budget and feeds mpq quantize, and one-line errors for budgets that cannot be met.
#include <algorithm>
#include <nlohmann/json.hpp>

#include "mpq/core/file.h"
#include "test_util.h"

namespace mpq {
namespace {

test::CommandResult mpq(const std::string& args) {
  return test::run_command(std::string(MPQ_BINARY) + " " + args);
}

nlohmann::json last_json(const test::CommandResult& r) {
  return nlohmann::json::parse(r.output.substr(r.output.rfind("\n{") + 1));
}

TEST(SearchCli, SensitivityReportThenAPlanThatMeetsItsBudgetAndQuantizes) {
  auto dir = test::temp_dir("search_cli");
  std::string report = (dir / "bn.json").string(), plan = (dir / "plan.json").string();
  auto s = mpq("sensitivity --metric bn_scale --json -o " + report);
  ASSERT_EQ(s.status, 0) << s.output;
  auto sj = last_json(s);
  EXPECT_EQ(sj["metric"], "bn_scale");
  ASSERT_EQ(sj["layers"].size(), 10u);
  EXPECT_GT(sj["layers"][3]["omega"]["2"].get<double>(), sj["layers"][3]["omega"]["8"].get<double>());
  EXPECT_TRUE(std::filesystem::exists(report));

  auto p = mpq("search --sensitivity " + report + " --budget avg-w-bits=3 --budget bops=300M "
               "--json -o " + plan);
  ASSERT_EQ(p.status, 0) << p.output;
  auto pj = last_json(p);
  EXPECT_LE(pj["predicted"]["avg_w_bits"].get<double>(), 3.0);
  EXPECT_LE(pj["predicted"]["bops"].get<double>(), 300e6);
  EXPECT_EQ(pj["layers"][0]["w_bits"], 8);  // first and last pinned

  auto q = mpq("quantize --plan " + plan + " --calib-count 128 --json -o " +
               (dir / "m").string());
  ASSERT_EQ(q.status, 0) << q.output;
  EXPECT_NEAR(last_json(q)["avg_w_bits"].get<double>(),
              pj["predicted"]["avg_w_bits"].get<double>(), 1e-9);
}

TEST(SearchCli, BudgetsThatCannotBeMetAreOneLineErrors) {
  auto r = mpq("search --metric coding_length --budget avg-w-bits=1");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("--budget avg-w-bits=1 is infeasible: the smallest avg-w-bits "
                          "reachable is"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  auto l = mpq("search --metric coding_length --budget latency=5ms");
  EXPECT_EQ(l.status, 1);
  EXPECT_NE(l.output.find("--latency-table"), std::string::npos) << l.output;
  auto u = mpq("search --metric coding_length --budget size=12XB");
  EXPECT_EQ(u.status, 1);
  EXPECT_NE(u.output.find("unknown unit 'XB'"), std::string::npos) << u.output;
}

TEST(SearchCli, SspsPlanMeetsEveryBudgetLogsTheShrinkingSpaceAndQuantizes) {
  auto dir = test::temp_dir("search_ssps_cli");
  std::string plan = (dir / "ssps.json").string();
  auto p = mpq("search --method ssps --budget avg-w-bits=3 --budget bops=300M --steps 150 "
               "--search-count 256 --json -o " + plan);
  ASSERT_EQ(p.status, 0) << p.output;
  auto pj = last_json(p);
  EXPECT_EQ(pj, nlohmann::json::parse(read_file(plan)));
  EXPECT_LE(pj["predicted"]["avg_w_bits"].get<double>(), 3.0);
  EXPECT_LE(pj["predicted"]["bops"].get<double>(), 300e6);
  EXPECT_EQ(pj["budget"]["allocator"], "ssps");
  ASSERT_EQ(pj["layers"].size(), 10u);
  EXPECT_EQ(pj["layers"][0]["w_bits"], 8);  // first and last pinned
  EXPECT_EQ(pj["layers"][9]["w_bits"], 8);
  const auto& rounds = pj["predicted"]["ssps"]["rounds"];
  ASSERT_GE(rounds.size(), 2u);
  EXPECT_EQ(rounds[0]["open_layers"], 8);
  for (size_t i = 1; i < rounds.size(); ++i)
    EXPECT_LE(rounds[i]["log2_space"].get<double>(), rounds[i - 1]["log2_space"].get<double>());

  auto q = mpq("quantize --plan " + plan + " --calib-count 128 --json -o " +
               (dir / "m").string());
  ASSERT_EQ(q.status, 0) << q.output;
  EXPECT_NEAR(last_json(q)["avg_w_bits"].get<double>(),
              pj["predicted"]["avg_w_bits"].get<double>(), 1e-9);

  // --finetune writes the tuned model beside the plan, and the plan names it.
  std::string tuned_plan = (dir / "tuned.json").string();
  auto f = mpq("search --method ssps --finetune --budget avg-w-bits=4 --steps 50 "
               "--search-count 128 --json -o " + tuned_plan);
  ASSERT_EQ(f.status, 0) << f.output;
  std::string tuned = (dir / "tuned.finetuned.onnx").string();
  EXPECT_EQ(last_json(f)["model"], tuned);
  auto e = mpq("eval " + tuned +
               " --data idx:/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz,"
               "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz@200 --json");
  ASSERT_EQ(e.status, 0) << e.output;
  EXPECT_GT(last_json(e)["top1"].get<double>(), 50.0);
}

TEST(SearchCli, SspsBadInputIsOneLine) {
  auto f = mpq("search --method ssps --finetune --budget avg-w-bits=4");
  EXPECT_EQ(f.status, 1);
  EXPECT_NE(f.output.find("--finetune trains the weights: give -o plan.json"), std::string::npos)
      << f.output;
  auto c = mpq("search --method ssps --candidates 2,16 --budget avg-w-bits=4");
  EXPECT_EQ(c.status, 1);
  EXPECT_NE(c.output.find("candidate width 16: SSPS searches quantized widths 2..8"),
            std::string::npos)
      << c.output;
  auto b = mpq("search --method ssps --budget avg-w-bits=1");
  EXPECT_EQ(b.status, 1);
  EXPECT_NE(b.output.find("is infeasible"), std::string::npos) << b.output;
  for (const auto* r : {&f, &c, &b})
    EXPECT_EQ(std::count(r->output.begin(), r->output.end(), '\n'), 1) << r->output;
}

}  // namespace
}  // namespace mpq
