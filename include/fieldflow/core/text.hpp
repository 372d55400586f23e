#pragma once
// Numbers in messages: the shortest "%g" form (1e+06, 0.5, nan), as every error prints them.
#include <cstdio>
#include <string>

namespace ff {

inline std::string format_number(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", x);
  return buf;
}

}  // namespace ff
