// What every fuzz target shares: a reader that turns the fuzzer's bytes
// into typed values, the invariant check, and quiet logs.
//
// Each target is one LLVMFuzzerTestOneInput. The same file builds into a
// libFuzzer binary (clang, scripts/fuzz.sh) and into a GoogleTest replay of
// its checked-in corpus (replay_main.cc, suite fuzz-replay), so nothing here
// may depend on either.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>

#include "absl/strings/str_format.h"
#include "vmm/log.h"

namespace skiff::fuzz {

// Reads the input front to back. Past the end every value is zero and every
// byte run empty, so a harness never checks for short input and a short
// input still means something (usually "do the default thing").
class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  size_t remaining() const { return size_ - offset_; }
  bool empty() const { return remaining() == 0; }

  // sizeof(T) bytes, little-endian, zero-padded at the end of the input.
  template <typename T>
  T Take() {
    static_assert(std::is_integral_v<T>);
    uint8_t raw[sizeof(T)] = {};
    const size_t n = remaining() < sizeof(T) ? remaining() : sizeof(T);
    if (n > 0) std::memcpy(raw, data_ + offset_, n);
    offset_ += n;
    T value;
    std::memcpy(&value, raw, sizeof(T));
    return value;
  }
  bool TakeBool() { return (Take<uint8_t>() & 1) != 0; }
  // A value in [0, n) for n >= 1, using as few bytes as n needs.
  uint64_t Below(uint64_t n) {
    if (n <= 1) return 0;
    if (n <= 0x100) return Take<uint8_t>() % n;
    if (n <= 0x10000) return Take<uint16_t>() % n;
    if (n <= 0x100000000) return Take<uint32_t>() % n;
    return Take<uint64_t>() % n;
  }
  // Up to `n` bytes (fewer at the end of the input).
  std::span<const uint8_t> TakeBytes(size_t n) {
    if (n > remaining()) n = remaining();
    std::span<const uint8_t> bytes(data_ + offset_, n);
    offset_ += n;
    return bytes;
  }
  std::span<const uint8_t> TakeRest() { return TakeBytes(remaining()); }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t offset_ = 0;
};

// An invariant of the code under test was broken. Aborts: libFuzzer saves
// the input as a crash, and the replay test fails with this line.
[[noreturn]] inline void InvariantBroken(const char* file, int line, const char* condition,
                                         const std::string& detail) {
  std::fprintf(stderr, "%s:%d: fuzz invariant broken: %s: %s\n", file, line, condition,
               detail.c_str());
  std::fflush(stderr);
  std::abort();
}

// FUZZ_CHECK(cond, "format", args...): the format explains what broke.
#define FUZZ_CHECK(condition, ...)                                    \
  do {                                                                \
    if (!(condition)) {                                               \
      ::skiff::fuzz::InvariantBroken(__FILE__, __LINE__, #condition,  \
                                     ::absl::StrFormat(__VA_ARGS__)); \
    }                                                                 \
  } while (0)

// Hostile inputs make Skiff log an error per bad request; millions of them
// would drown the fuzzer's output and slow it down. SKIFF_FUZZ_LOG=1 keeps
// every line (at debug level) for looking into one input.
inline void QuietLogs() {
  static const bool done = [] {
    if (std::getenv("SKIFF_FUZZ_LOG") != nullptr) {
      SetLogLevel(LogLevel::kDebug);
    } else {
      SetLogLevel(LogLevel::kError);
      SetLogFile(std::fopen("/dev/null", "w"));
    }
    return true;
  }();
  (void)done;
}

}  // namespace skiff::fuzz
