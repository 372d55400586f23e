// Precompiled for every unit test (FIELDFLOW_PCH): GoogleTest, Eigen and the library headers that
// most tests include, parsed once per build instead of once per test.
#pragma once
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numbers>
#include <sstream>
#include <string>
#include <vector>

#include "fieldflow/core/config.hpp"
#include "fieldflow/core/error.hpp"
#include "fieldflow/core/rng.hpp"
#include "fieldflow/flow/checkpoint.hpp"
#include "fieldflow/flow/flow.hpp"
#include "fieldflow/io/grid_file.hpp"
