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

}  // namespace
}  // namespace mpq
