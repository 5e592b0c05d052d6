#include "vmm/json_lines.h"

#include <string>

#include "gtest/gtest.h"

namespace skiff {
namespace {

TEST(JsonLinesTest, RecordsTheLineOfEveryKeyAndArrayItem) {
  const std::string text =
      "{\n"                         // 1
      "  \"kernel\": \"k\",\n"      // 2
      "  // a comment\n"            // 3
      "  \"cpus\": 2\n"             // 4  a number: read one past, a newline
      "  ,\"disk\": [\n"            // 5
      "    \"path=a\",\n"           // 6
      "    {\"path\": \"b\",\n"     // 7
      "     \"readonly\": true}\n"  // 8
      "  ],\n"                      // 9
      "  \"memory\":\n"             // 10
      "     512\n"                  // 11
      "}\n";
  auto doc = ParseJsonWithLines(text);
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_EQ(doc->value["cpus"], 2);
  EXPECT_EQ(doc->value["disk"][1]["path"], "b");
  EXPECT_EQ(doc->LineOf("/kernel"), 2);
  EXPECT_EQ(doc->LineOf("/cpus"), 4);
  EXPECT_EQ(doc->LineOf("/disk"), 5);
  EXPECT_EQ(doc->LineOf("/disk/0"), 6);
  EXPECT_EQ(doc->LineOf("/disk/1"), 7);
  EXPECT_EQ(doc->LineOf("/disk/1/path"), 7);
  EXPECT_EQ(doc->LineOf("/disk/1/readonly"), 8);
  EXPECT_EQ(doc->LineOf("/memory"), 10);  // the key's line
  // Unrecorded pointers fall back to the nearest parent.
  EXPECT_EQ(doc->LineOf("/disk/1/nothing"), 7);
  EXPECT_EQ(doc->LineOf("/nothing"), 1);
}

TEST(JsonLinesTest, KeepsKeyOrder) {
  auto doc = ParseJsonWithLines(R"({"z": 1, "a": 2, "m": 3})");
  ASSERT_TRUE(doc.ok());
  std::string order;
  for (const auto& [key, value] : doc->value.items()) order += key;
  EXPECT_EQ(order, "zam");
}

TEST(JsonLinesTest, SyntaxErrorsSayLineAndColumn) {
  auto doc = ParseJsonWithLines("{\n  \"kernel\": \"k\",\n  \"cpus\" 2\n}\n");
  ASSERT_FALSE(doc.ok());
  EXPECT_EQ(doc.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(doc.status().message());
  EXPECT_EQ(message.rfind("line 3, column ", 0), 0u) << message;
  EXPECT_EQ(message.find("json.exception"), std::string::npos) << message;

  EXPECT_EQ(std::string(ParseJsonWithLines("").status().message()).rfind("line 1, column 1", 0),
            0u);
  EXPECT_EQ(std::string(ParseJsonWithLines("{\"a\": 1} x").status().message()).rfind("line 1", 0),
            0u);
  EXPECT_EQ(
      std::string(ParseJsonWithLines("{\"a\": \"\xff\"}").status().message()).rfind("line 1", 0),
      0u);
}

TEST(JsonLinesTest, DuplicateKeysAreErrors) {
  auto doc = ParseJsonWithLines("{\n\"cpus\": 1,\n\n\"cpus\": 2}");
  ASSERT_FALSE(doc.ok());
  EXPECT_EQ(doc.status().message(), "line 4: key 'cpus' given twice (first on line 2)");
  // The same key in different objects is fine.
  EXPECT_TRUE(ParseJsonWithLines(R"({"a": {"x": 1}, "b": {"x": 2}})").ok());
}

TEST(JsonLinesTest, DeepNestingIsRefused) {
  std::string deep(1000, '[');
  deep += std::string(1000, ']');
  auto doc = ParseJsonWithLines(deep);
  ASSERT_FALSE(doc.ok());
  EXPECT_NE(std::string(doc.status().message()).find("nested deeper than"), std::string::npos);
  std::string fine(kMaxJsonDepth, '[');
  fine += std::string(kMaxJsonDepth, ']');
  EXPECT_TRUE(ParseJsonWithLines(fine).ok());
}

TEST(JsonLinesTest, PointerEscapes) {
  EXPECT_EQ(JsonPointerChild("", "a/b~c"), "/a~1b~0c");
  EXPECT_EQ(JsonPointerChild("/x", "y"), "/x/y");
}

}  // namespace
}  // namespace skiff
