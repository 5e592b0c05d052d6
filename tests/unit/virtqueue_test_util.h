// Small helpers for tests that drive a Virtqueue.
#pragma once

#include <string>
#include <utility>

#include "devices/virtio/queue.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "vmm/guest_memory.h"

#define SKIFF_TEST_CONCAT_INNER(a, b) a##b
#define SKIFF_TEST_CONCAT(a, b) SKIFF_TEST_CONCAT_INNER(a, b)

#ifndef ASSERT_OK_AND_ASSIGN
// ASSERT_OK_AND_ASSIGN(auto x, F()); declares x = *F() or fails the test.
#define ASSERT_OK_AND_ASSIGN(lhs, expr)                    \
  auto SKIFF_TEST_CONCAT(statusor_, __LINE__) = (expr);    \
  ASSERT_TRUE(SKIFF_TEST_CONCAT(statusor_, __LINE__).ok()) \
      << SKIFF_TEST_CONCAT(statusor_, __LINE__).status();  \
  lhs = *std::move(SKIFF_TEST_CONCAT(statusor_, __LINE__))
#endif

namespace skiff::virtio {

// Expects Pop to fail with a message containing `what`, naming the check
// that fired (so a test cannot pass because some other check refused).
inline void ExpectPopError(Virtqueue& queue, const GuestMemory& memory, const std::string& what) {
  auto result = queue.Pop(memory);
  ASSERT_FALSE(result.ok()) << "Pop succeeded; expected an error containing \"" << what << "\"";
  EXPECT_THAT(std::string(result.status().message()), ::testing::HasSubstr(what));
}

}  // namespace skiff::virtio
