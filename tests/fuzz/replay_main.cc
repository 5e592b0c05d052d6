// Replays a fuzz target's corpus under GoogleTest, one test per file, so the
// normal build (g++, no libFuzzer) runs every seed and every regression
// input on each `meson test`: `fuzz_replay_<target> CORPUS_DIR`.
//
// A broken invariant or a sanitizer report aborts the binary, like a crash
// under libFuzzer; the file being replayed is printed first, so the log
// names the input that did it.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "gtest/gtest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

class ReplayTest : public ::testing::Test {
 public:
  explicit ReplayTest(std::filesystem::path path) : path_(std::move(path)) {}

  void TestBody() override {
    std::ifstream in(path_, std::ios::binary);
    ASSERT_TRUE(in) << "cannot read " << path_;
    const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                     std::istreambuf_iterator<char>());
    std::fprintf(stderr, "replaying %s (%zu bytes)\n", path_.c_str(), bytes.size());
    EXPECT_EQ(LLVMFuzzerTestOneInput(bytes.data(), bytes.size()), 0);
  }

 private:
  std::filesystem::path path_;
};

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  std::error_code error;
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  // A replay with nothing to replay would pass while proving nothing.
  if (error || files.empty()) {
    std::fprintf(stderr, "%s: no corpus files in %s%s%s\n", argv[0], dir.c_str(), error ? ": " : "",
                 error ? error.message().c_str() : "");
    return 1;
  }
  std::sort(files.begin(), files.end());
  const std::filesystem::path name =
      dir.filename().empty() ? dir.parent_path().filename() : dir.filename();
  const std::string suite = "FuzzReplay_" + name.string();
  for (const auto& file : files) {
    // GoogleTest owns what the factory returns: its API, not ours.
    ::testing::RegisterTest(suite.c_str(), file.filename().c_str(), nullptr, nullptr, __FILE__,
                            __LINE__,
                            [file]() -> ::testing::Test* { return new ReplayTest(file); });
  }
  return RUN_ALL_TESTS();
}
