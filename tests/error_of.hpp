#pragma once
// The message of the ff::Error that f throws, or "(no error)": for asserting exact error texts.
#include <functional>
#include <string>

#include "fieldflow/core/error.hpp"

inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ff::Error& e) {
    return e.what();
  }
  return "(no error)";
}
