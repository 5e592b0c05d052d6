// Text built inside a signal handler: a fixed buffer, no allocation, no
// locale, nothing that is not async-signal-safe. Shared by the reports a
// dying Skiff writes (seccomp's SIGSYS, the fatal-signal report).
#pragma once

#include <cstddef>
#include <cstdint>

namespace skiff {

class SignalSafeText {
 public:
  void Add(const char* text) {
    while (*text != '\0' && used_ < sizeof(buffer_) - 1) buffer_[used_++] = *text++;
  }
  void AddNumber(long value) {
    char digits[24];
    int n = 0;
    unsigned long v = value < 0 ? -static_cast<unsigned long>(value) : value;
    do {
      digits[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    if (value < 0) Add("-");
    AddDigits(digits, n);
  }
  void AddHex(uintptr_t value) {
    char digits[2 * sizeof(value)];
    int n = 0;
    do {
      digits[n++] = "0123456789abcdef"[value & 0xf];
      value >>= 4;
    } while (value != 0);
    Add("0x");
    AddDigits(digits, n);
  }
  const char* data() const { return buffer_; }
  size_t size() const { return used_; }

 private:
  // `digits` holds the number least significant first.
  void AddDigits(const char* digits, int n) {
    while (n > 0 && used_ < sizeof(buffer_) - 1) buffer_[used_++] = digits[--n];
  }

  char buffer_[320];
  size_t used_ = 0;
};

}  // namespace skiff
