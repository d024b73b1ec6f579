#include "jinja/call.h"

#include <algorithm>

#include "core/check.h"

namespace qvl::jinja {

std::vector<const Value*> Args::bind(std::string_view callee, std::initializer_list<std::string_view> params,
                                     size_t required) const {
  std::vector<const Value*> bound(params.size(), nullptr);
  if (positional.size() > params.size())
    fail(ErrorKind::kInvalidArgument, callee, "() takes at most ", params.size(), " argument(s) (",
         positional.size(), " given)");
  for (size_t i = 0; i < positional.size(); ++i) bound[i] = &positional[i];
  for (const auto& [name, value] : keyword) {
    const auto it = std::find(params.begin(), params.end(), name);
    if (it == params.end()) fail(ErrorKind::kInvalidArgument, callee, "() got an unexpected keyword argument '", name, "'");
    const size_t index = static_cast<size_t>(it - params.begin());
    if (bound[index]) fail(ErrorKind::kInvalidArgument, callee, "() got multiple values for argument '", name, "'");
    bound[index] = &value;
  }
  for (size_t i = 0; i < required; ++i)
    if (!bound[i])
      fail(ErrorKind::kInvalidArgument, callee, "() missing required argument '", *(params.begin() + i), "'");
  return bound;
}

}  // namespace qvl::jinja
