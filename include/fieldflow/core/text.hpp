#pragma once
// Numbers in messages: the shortest "%g" form (1e+06, 0.5, nan), as every error prints them.
// Names in messages: printable() escapes control characters, so a file name holding a newline
// cannot split the one error line.
#include <cstdio>
#include <string>

namespace ff {

inline std::string format_number(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", x);
  return buf;
}

// Control characters (newline, tab, escape, DEL, ...) as C escapes: "a\nb" -> "a\\nb".
inline std::string printable(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (const char ch : text) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c != 0x7f) {
      out += ch;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

}  // namespace ff
