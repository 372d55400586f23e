#pragma once
// What both reports compute the same way: mean and scatter over fields of binned statistics, the
// slices shown, the one-point PDF range, progress lines, and a tolerant reader of log tables.
#include <string>
#include <vector>

#include "fieldflow/core/grid.hpp"
#include "fieldflow/report/document.hpp"

namespace ff::report {

// Per-bin mean and standard deviation over fields that share one set of bins. Adding values on
// other bins (a field of another box or grid) is an Error naming the source.
class Ensemble {
 public:
  explicit Ensemble(std::string what) : what_(std::move(what)) {}
  void add(const std::vector<double>& x, const std::vector<double>& y, const std::string& source);
  size_t count() const { return values_.size(); }
  const std::vector<double>& x() const { return x_; }
  std::vector<double> mean() const;
  std::vector<double> std() const;  // sample standard deviation (0 for one field)

 private:
  std::string what_, first_;
  std::vector<double> x_;
  std::vector<std::vector<double>> values_;
};

// The x-plane `index` (-1: the middle) of a field as an n x n image, rows = y, columns = z.
template <typename T>
std::vector<double> slice_of(const BasicGrid<T>& field, int index);

// Percentile (0..100) of the finite values of several arrays.
double percentile(const std::vector<const std::vector<double>*>& arrays, double q);

// A line "report: ..." on standard output, flushed.
void progress(const std::string& message);

// A numeric CSV with a header whose cells may be empty (NaN), e.g. train's log.csv where
// val_bpv is filled only on validation steps. Missing columns come back empty.
struct LooseTable {
  std::vector<std::string> header;
  std::vector<std::vector<double>> columns;
  const std::vector<double>* column(const std::string& name) const;
};
LooseTable read_loose_csv(const std::string& path);

}  // namespace ff::report
