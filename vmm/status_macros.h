// Early-return helpers for absl::Status / absl::StatusOr.
// Debian's Abseil (20220623) ships no ABSL_RETURN_IF_ERROR, so we keep our own.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define SKIFF_CONCAT_INNER(a, b) a##b
#define SKIFF_CONCAT(a, b) SKIFF_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                        \
  do {                                               \
    ::absl::Status skiff_status_ = (expr);           \
    if (!skiff_status_.ok()) return skiff_status_;   \
  } while (0)

#define SKIFF_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()

// ASSIGN_OR_RETURN(auto x, Foo()); declares/assigns x or returns Foo's error.
#define ASSIGN_OR_RETURN(lhs, expr) \
  SKIFF_ASSIGN_OR_RETURN_IMPL(SKIFF_CONCAT(skiff_statusor_, __LINE__), lhs, expr)
