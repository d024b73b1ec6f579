#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "test_util.h"
#include "tokenizer/chat_template.h"

namespace qvl {
namespace {

TEST(ChatTemplateGolden, Placeholder) {
  ChatTemplate t("{{ 1 }}");
  EXPECT_EQ(t.render(nlohmann::json::array(), true), "1");
}

}  // namespace
}  // namespace qvl
