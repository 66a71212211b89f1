// The test binary's main: gtest's, after the allocator tuning the mpq CLI applies
// (mpq::tune_allocator), so in-process tests run the models at the CLI's speed (without it,
// MobileNetV2 over val1300 at batch 128 spends 180 s page-faulting instead of 15 s).
#include <gtest/gtest.h>

#include "mpq/core/memory.h"

int main(int argc, char** argv) {
  mpq::tune_allocator();
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
