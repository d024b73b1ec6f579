// Parser of the Jinja2 subset: tokens -> syntax tree, following jinja2's grammar and operator
// precedence (filters and tests bind tighter than arithmetic; `not` looser than comparisons).
#pragma once

#include <memory>
#include <string_view>

#include "jinja/ast.h"
#include "jinja/limits.h"

namespace qvl::jinja {

// Syntax errors fail with qvl::Error(kInvalidFile) naming line and column; jinja2 features
// outside the subset (include, call blocks, ...) fail with kUnsupported.
std::unique_ptr<TemplateAst> parse_template(std::string_view source, const Limits& limits);

}  // namespace qvl::jinja
