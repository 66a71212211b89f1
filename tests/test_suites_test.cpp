// ctest runs one process per test suite, the suites found in the sources by CMake
// (tests/CMakeLists.txt): every suite the binary registers must be one of them, or its tests
// would never run in CI.
#include <gtest/gtest.h>

#include <set>
#include <sstream>
#include <string>

namespace {

TEST(TestSuites, EveryRegisteredSuiteIsACtest) {
  std::set<std::string> listed;
  std::stringstream in(MPQ_TEST_SUITES);
  for (std::string s; std::getline(in, s, ',');) listed.insert(s);
  const ::testing::UnitTest& unit = *::testing::UnitTest::GetInstance();
  ASSERT_GT(unit.total_test_suite_count(), 1);
  for (int i = 0; i < unit.total_test_suite_count(); ++i) {
    std::string name = unit.GetTestSuite(i)->name();
    EXPECT_TRUE(listed.count(name)) << "test suite " << name << " is not run by ctest: write TEST("
                                    << name << ", ...) at the start of a line";
  }
}

}  // namespace
