// The JUnit writer: the shape CI tools read, and valid XML whatever the
// guest printed.
#include "vmm/junit_report.h"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/temp_dir.h"
#include "vmm/output_file.h"

namespace skiff {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

JunitRun SampleRun() {
  JunitRun run;
  run.run_name = "boot vmlinuz";
  run.timestamp = "2024-05-01T12:00:00";
  run.duration_seconds = 12.3456;
  run.exit_code = 120;
  run.exit_reason = "the console matched --expect-fail 'FAIL': FAIL <1> & \"2\"";
  run.properties = {{"kernel", "/guest/vmlinuz"}, {"kernel_cmdline", "console=ttyS0 quiet"}};
  run.expected = {{"login:", true, "debian login:", 3.5}, {"ok \\d+ <done>", false, "", 0}};
  run.fail_patterns = {{"FAIL", true, "FAIL <1> & \"2\"", 4.25}, {"panic", false, "", 0}};
  run.console_tail = "booting\n\x1b[32mOK\x1b[0m\r\nFAIL <1> & \"2\"\n";
  return run;
}

// Runs Python's XML parser over `xml`; returns its complaint, or "" if the
// document is well-formed and has the JUnit shape.
std::string CheckWithPython(const std::string& xml) {
  testing::TempDir dir;
  const std::string path = dir.File("report.xml");
  {
    std::ofstream out(path, std::ios::binary);
    out << xml;
  }
  const std::string command =
      "python3 -c \"import sys, xml.etree.ElementTree as ET\n"
      "root = ET.parse(sys.argv[1]).getroot()\n"
      "assert root.tag == 'testsuites', root.tag\n"
      "suites = root.findall('testsuite')\n"
      "assert len(suites) == 1\n"
      "cases = suites[0].findall('testcase')\n"
      "assert int(suites[0].get('tests')) == len(cases)\n"
      "bad = sum(1 for c in cases if c.find('failure') is not None)\n"
      "assert int(suites[0].get('failures')) == bad, (suites[0].get('failures'), bad)\n"
      "errs = sum(1 for c in cases if c.find('error') is not None)\n"
      "assert int(suites[0].get('errors')) == errs\n"
      "float(suites[0].get('time'))\n"
      "[float(c.get('time')) for c in cases]\n"
      "print('OK')\" '" +
      path + "' 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return "popen failed";
  std::string output;
  char buffer[512];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) output.append(buffer, n);
  const int status = ::pclose(pipe);
  return status == 0 && output == "OK\n" ? "" : output;
}

TEST(XmlEscapeTest, MarkupAndWhitespace) {
  EXPECT_EQ(XmlEscape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
  EXPECT_EQ(XmlEscape("l1\nl2\tx\r"), "l1&#10;l2&#9;x&#13;");
  EXPECT_EQ(XmlEscapeText("l1\nl2\tx\r"), "l1\nl2\tx&#13;");
}

TEST(XmlEscapeTest, ForbiddenControlsBecomeVisibleAndBadUtf8IsReplaced) {
  EXPECT_EQ(XmlEscape(std::string("\x1b[0m\x00\x7f", 6)), "\\x1b[0m\\x00\x7f");
  EXPECT_EQ(XmlEscape("caf\xc3\xa9 \xe2\x9c\x93"), "caf\xc3\xa9 \xe2\x9c\x93");  // kept
  const std::string replacement = "\xef\xbf\xbd";
  EXPECT_EQ(XmlEscape("\xff"), replacement);
  EXPECT_EQ(XmlEscape("\xc3"), replacement);                                      // truncated
  EXPECT_EQ(XmlEscape("\xc0\xaf"), replacement + replacement);                    // overlong '/'
  EXPECT_EQ(XmlEscape("\xed\xa0\x80"), replacement + replacement + replacement);  // surrogate
  EXPECT_EQ(XmlEscape("\xf4\x90\x80\x80").substr(0, 3), replacement);             // > U+10FFFF
  EXPECT_EQ(XmlEscape("\xef\xbf\xbe"), "\\ufffe");
  EXPECT_EQ(XmlEscape("\xf0\x9f\x98\x80"), "\xf0\x9f\x98\x80");  // U+1F600 is fine
}

TEST(JunitReportTest, ShapeCountsAndCases) {
  const std::string xml = JunitXml(SampleRun());
  EXPECT_EQ(xml.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites", 0), 0u);
  // run (failed), 2 expect (1 missing), 2 expect-fail (1 seen): 3 failures.
  EXPECT_THAT(xml, HasSubstr("<testsuite name=\"skiff\" tests=\"5\" failures=\"3\" "
                             "errors=\"0\" skipped=\"0\" time=\"12.346\" "
                             "timestamp=\"2024-05-01T12:00:00\">"));
  EXPECT_THAT(xml, HasSubstr("<property name=\"exit_code\" value=\"120\"/>"));
  EXPECT_THAT(xml, HasSubstr("<property name=\"kernel_cmdline\" value=\"console=ttyS0 quiet\"/>"));
  EXPECT_THAT(xml, HasSubstr("<testcase classname=\"skiff\" name=\"boot vmlinuz\" "
                             "time=\"12.346\">"));
  EXPECT_THAT(xml, HasSubstr("<failure type=\"exit code 120\" message=\"exit code 120: the "
                             "console matched --expect-fail &apos;FAIL&apos;: FAIL &lt;1&gt; "
                             "&amp; &quot;2&quot;\">"));
  EXPECT_THAT(xml, HasSubstr("<testcase classname=\"skiff.expect\" name=\"login:\" "
                             "time=\"3.500\"/>"));
  EXPECT_THAT(xml, HasSubstr("<testcase classname=\"skiff.expect\" name=\"ok \\d+ &lt;done&gt;\" "
                             "time=\"12.346\">\n      <failure type=\"expect\" "
                             "message=\"not seen on the console\">"));
  EXPECT_THAT(xml, HasSubstr("<testcase classname=\"skiff.expect-fail\" name=\"FAIL\" "
                             "time=\"4.250\">\n      <failure type=\"expect-fail\" "
                             "message=\"seen on the console: FAIL &lt;1&gt; &amp; "
                             "&quot;2&quot;\">"));
  EXPECT_THAT(xml, HasSubstr("<testcase classname=\"skiff.expect-fail\" name=\"panic\" "
                             "time=\"12.346\"/>"));
  EXPECT_THAT(xml, HasSubstr("<system-out>booting\n\\x1b[32mOK\\x1b[0m&#13;\nFAIL &lt;1&gt; "
                             "&amp; &quot;2&quot;\n</system-out>"));
  EXPECT_EQ(CheckWithPython(xml), "");
}

TEST(JunitReportTest, PassingRunHasNoFailures) {
  JunitRun run;
  run.exit_reason = "every --expect pattern was seen (1)";
  run.expected = {{"ready", true, "ready", 1.0}};
  const std::string xml = JunitXml(run);
  EXPECT_THAT(xml, HasSubstr("tests=\"2\" failures=\"0\" errors=\"0\""));
  EXPECT_THAT(xml, Not(HasSubstr("<failure")));
  EXPECT_THAT(xml, Not(HasSubstr("timestamp=")));  // none given
  EXPECT_EQ(CheckWithPython(xml), "");
}

TEST(JunitReportTest, SkiffsOwnFailuresAreErrors) {
  JunitRun run;
  run.exit_code = 1;
  run.exit_reason = "KVM_RUN: Bad address";
  const std::string xml = JunitXml(run);
  EXPECT_THAT(xml, HasSubstr("tests=\"1\" failures=\"0\" errors=\"1\""));
  EXPECT_THAT(xml, HasSubstr("<error type=\"exit code 1\""));
  EXPECT_EQ(CheckWithPython(xml), "");
}

TEST(JunitReportTest, AnyGuestBytesGiveValidXml) {
  JunitRun run = SampleRun();
  std::string junk;
  for (int i = 0; i < 256; ++i) junk.push_back(static_cast<char>(i));
  junk += "]]><!-- <![CDATA[ &#0; \xed\xa0\x80\xf8\x88\x80\x80\x80";
  run.console_tail = junk + junk;
  run.exit_reason = junk;
  run.expected[0].regex = junk;
  run.fail_patterns[0].line = junk;
  run.properties.push_back({"odd", junk});
  EXPECT_EQ(CheckWithPython(JunitXml(run)), "");
}

TEST(JunitReportTest, WriteReplacesTheFilesContents) {
  testing::TempDir dir;
  const std::string path = dir.File("junit.xml");
  auto fd = CreateOutputFile("--junit", path);
  ASSERT_TRUE(fd.ok()) << fd.status();
  JunitRun run = SampleRun();
  run.console_tail = std::string(100000, 'x');
  ASSERT_TRUE(WriteJunitFile(fd->get(), path, run).ok());
  run.console_tail = "short";
  ASSERT_TRUE(WriteJunitFile(fd->get(), path, run).ok());
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), JunitXml(run));
  EXPECT_FALSE(WriteJunitFile(-1, path, run).ok());
}

}  // namespace
}  // namespace skiff
