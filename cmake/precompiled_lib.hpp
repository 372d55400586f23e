// Precompiled for every library source but the Highway kernels (FIELDFLOW_PCH): the standard and
// third-party headers that most of them parse, so a clean build (CI builds twice) parses them once.
#pragma once
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <complex>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <numbers>
#include <optional>
#include <sstream>
#include <string>
#include <vector>
