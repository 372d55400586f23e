#pragma once
// Writing small JSON files by hand: a quoted, escaped string, and a number with 9 significant
// digits (null when it is not finite, as JSON has no NaN or Inf).
#include <string>

namespace ff {

std::string json_string(const std::string& text);
std::string json_number(double value);

}  // namespace ff
