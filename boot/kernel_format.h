// Recognises which kind of kernel file the operator handed over, so each
// architecture can say plainly when it got the other one's kernel (an x86
// bzImage on arm64, an arm64 Image on x86) instead of a parser's complaint
// about a missing magic number. Pure function over bytes.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace skiff::boot {

enum class KernelFormat {
  kUnknown,
  kBzImage,       // x86 boot sector signature and "HdrS" setup header
  kArm64Image,    // "ARM\x64" at offset 56
  kArm64ImageGz,  // gzip whose first decompressed bytes are an arm64 Image
  kGzip,          // gzip holding something else (or too damaged to tell)
  kElf,           // a vmlinux
};

KernelFormat DetectKernelFormat(std::span<const uint8_t> file);

// "an x86 bzImage", "a gzip-compressed arm64 Image", ... for messages.
std::string DescribeKernelFormat(KernelFormat format);

}  // namespace skiff::boot
