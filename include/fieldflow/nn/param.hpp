#pragma once
// A learnable array: its values and the gradient of the loss with respect to them.
#include <string>
#include <vector>

namespace ff {

template <typename T>
struct Param {
  std::string name;
  std::vector<T> value;
  std::vector<T> grad;

  Param() = default;
  Param(std::string name_, size_t size) : name(std::move(name_)), value(size), grad(size) {}
  size_t size() const { return value.size(); }
  void zero_grad() {
    for (auto& g : grad) g = T(0);
  }
};

}  // namespace ff
