// --expect / --expect-fail: line splitting across chunks and the verdicts.
#include "vmm/console_matcher.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "vmm/line_splitter.h"

namespace skiff {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Verdict = ConsoleMatcher::Verdict;

std::span<const uint8_t> Bytes(std::string_view text) {
  return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size());
}

std::vector<std::string> Split(LineSplitter& splitter, const std::vector<std::string>& chunks) {
  std::vector<std::string> lines;
  for (const std::string& chunk : chunks) {
    splitter.Feed(Bytes(chunk), [&](std::string_view line) { lines.emplace_back(line); });
  }
  return lines;
}

TEST(LineSplitterTest, LinesSpanChunksAndLoseTheirCr) {
  LineSplitter splitter;
  EXPECT_THAT(Split(splitter, {"hel", "lo\r", "\nwor", "ld\n\n", "tail"}),
              ElementsAre("hello", "world", ""));
  EXPECT_EQ(splitter.partial(), "tail");
}

TEST(LineSplitterTest, ByteAtATimeAsTheUartSendsIt) {
  LineSplitter splitter;
  std::vector<std::string> chunks;
  for (char c : std::string("one\r\ntwo\n")) chunks.emplace_back(1, c);
  EXPECT_THAT(Split(splitter, chunks), ElementsAre("one", "two"));
}

TEST(LineSplitterTest, OverlongLinesComeInPiecesSoMemoryStaysBounded) {
  LineSplitter splitter(8);
  EXPECT_THAT(Split(splitter, {"0123456789abcdefXY\n"}), ElementsAre("01234567", "89abcdef", "XY"));
  EXPECT_TRUE(splitter.partial().empty());
}

TEST(ConsoleMatcherTest, SucceedsOnceEveryExpectedPatternWasSeen) {
  auto m = ConsoleMatcher::Create({"login:", R"(ok \d+)"}, {});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->OnLine("booting", absl::Seconds(1)), Verdict::kUndecided);
  EXPECT_EQ(m->OnLine("test ok 12 done", absl::Seconds(2)), Verdict::kUndecided);
  EXPECT_EQ(m->OnLine("test ok 13", absl::Seconds(3)), Verdict::kUndecided);
  EXPECT_EQ(m->OnLine("debian login: ", absl::Seconds(4)), Verdict::kAllExpectedSeen);
  ASSERT_EQ(m->expected().size(), 2u);
  EXPECT_TRUE(m->expected()[1].seen);
  EXPECT_EQ(m->expected()[1].line, "test ok 12 done");  // the first match is kept
  EXPECT_EQ(m->expected()[1].seen_at, absl::Seconds(2));
  EXPECT_EQ(m->expected()[0].seen_at, absl::Seconds(4));
  EXPECT_TRUE(m->all_expected_seen());
  EXPECT_EQ(m->failed_by(), nullptr);
}

TEST(ConsoleMatcherTest, OneLineMaySatisfySeveralPatterns) {
  auto m = ConsoleMatcher::Create({"a", "b"}, {});
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->OnLine("ab", absl::ZeroDuration()), Verdict::kAllExpectedSeen);
}

TEST(ConsoleMatcherTest, FailPatternFailsAtOnceAndWinsOverTheLastExpectedOne) {
  auto m = ConsoleMatcher::Create({"done"}, {"Kernel panic", "FAIL"});
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->OnLine("all done; FAIL: 1 test", absl::Seconds(5)), Verdict::kFailSeen);
  ASSERT_NE(m->failed_by(), nullptr);
  EXPECT_EQ(m->failed_by()->regex, "FAIL");
  EXPECT_EQ(m->failed_by()->line, "all done; FAIL: 1 test");
  EXPECT_TRUE(m->fail_patterns()[1].seen);
  EXPECT_FALSE(m->fail_patterns()[0].seen);
  // Decided: later lines change nothing.
  EXPECT_EQ(m->OnLine("done", absl::Seconds(6)), Verdict::kFailSeen);
  EXPECT_FALSE(m->expected()[0].seen);
}

TEST(ConsoleMatcherTest, OnlyFailPatternsNeverSucceed) {
  auto m = ConsoleMatcher::Create({}, {"oops"});
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->OnLine("fine", absl::ZeroDuration()), Verdict::kUndecided);
  EXPECT_EQ(m->OnLine("oops", absl::ZeroDuration()), Verdict::kFailSeen);
}

TEST(ConsoleMatcherTest, PatternsAreSearchesWithAnchorsPerLine) {
  auto m = ConsoleMatcher::Create({"^ready$"}, {});
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->OnLine("not ready", absl::ZeroDuration()), Verdict::kUndecided);
  EXPECT_EQ(m->OnLine("ready now", absl::ZeroDuration()), Verdict::kUndecided);
  EXPECT_EQ(m->OnLine("ready", absl::ZeroDuration()), Verdict::kAllExpectedSeen);
}

TEST(ConsoleMatcherTest, BadPatternsAreRefusedWithTheOptionNamed) {
  auto bad = ConsoleMatcher::Create({"ok", "(unclosed"}, {});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("--expect '(unclosed'"));
  auto bad_fail = ConsoleMatcher::Create({}, {"a**"});
  ASSERT_FALSE(bad_fail.ok());
  EXPECT_THAT(std::string(bad_fail.status().message()), HasSubstr("--expect-fail 'a**'"));
  // Backreferences are not RE2 syntax (they are what makes matching slow).
  EXPECT_FALSE(ConsoleMatcher::Create({R"((a)\1)"}, {}).ok());
  EXPECT_THAT(std::string(ConsoleMatcher::Create({""}, {}).status().message()),
              HasSubstr("empty pattern"));
  EXPECT_TRUE(ValidateConsolePattern("--expect", "a{1,3}").ok());
  EXPECT_FALSE(ValidateConsolePattern("--expect", "[z-a]").ok());
}

TEST(ConsoleMatcherTest, PathologicalPatternOnALongHostileLineStaysFast) {
  // (a+)+$ backtracks exponentially in a naive engine on "aaa...b"; RE2
  // is linear. The test would time out rather than pass if it were not.
  auto m = ConsoleMatcher::Create({"(a+)+$"}, {"(x|x)*y"});
  ASSERT_TRUE(m.ok());
  std::string line(LineSplitter::kDefaultMaxLine, 'a');
  line.back() = 'b';
  EXPECT_EQ(m->OnLine(line, absl::ZeroDuration()), Verdict::kUndecided);
  EXPECT_EQ(m->OnLine(std::string(4096, 'x'), absl::ZeroDuration()), Verdict::kUndecided);
  EXPECT_EQ(m->OnLine("aaaa", absl::ZeroDuration()), Verdict::kAllExpectedSeen);
}

TEST(ConsoleMatcherTest, InvalidUtf8AndNulBytesInOutputAreJustText) {
  auto m = ConsoleMatcher::Create({"end"}, {});
  ASSERT_TRUE(m.ok());
  const std::string junk("\xff\xfe\0\x80 end", 8);
  EXPECT_EQ(m->OnLine(junk, absl::ZeroDuration()), Verdict::kAllExpectedSeen);
}

}  // namespace
}  // namespace skiff
