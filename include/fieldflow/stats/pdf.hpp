#pragma once
// One-point PDF of a field's values: a normalised histogram. Bins are uniform in the value
// (linear) or in log10(1 + delta) (log, for overdensities: delta <= -1 falls below the range).
#include <span>
#include <vector>

namespace ff {

struct PdfBinning {
  double lo = -1.0, hi = 1.0;  // range of the value (delta), also for log bins
  int bins = 50;
  bool log_one_plus = false;  // bins uniform in log10(1 + delta): needs lo > -1
};

struct OnePointPdf {
  std::vector<double> x;            // bin centre: the value, or 1 + delta at the log-bin centre
  std::vector<double> density;      // fraction of the values per unit of the binned variable
  double below = 0.0, above = 0.0;  // fractions outside [lo, hi] (non-finite values: above)
};

template <typename T>
OnePointPdf one_point_pdf(std::span<const T> values, const PdfBinning& binning);

}  // namespace ff
