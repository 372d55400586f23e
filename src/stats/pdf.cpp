#include "fieldflow/stats/pdf.hpp"

#include <cmath>

#include "fieldflow/core/error.hpp"
#include "fieldflow/core/text.hpp"

namespace ff {

template <typename T>
OnePointPdf one_point_pdf(std::span<const T> values, const PdfBinning& b) {
  if (b.bins < 1)
    throw Error("one-point PDF", "needs at least one bin, got " + std::to_string(b.bins));
  if (!(b.hi > b.lo) || !std::isfinite(b.lo) || !std::isfinite(b.hi))
    throw Error("one-point PDF",
                "needs a range lo < hi, got " + format_number(b.lo) + ", " + format_number(b.hi));
  if (b.log_one_plus && !(b.lo > -1.0))
    throw Error("one-point PDF", "log bins need lo > -1, got " + format_number(b.lo));
  if (values.empty()) throw Error("one-point PDF", "no values");
  // The binned variable u: delta itself or log10(1 + delta).
  auto to_u = [&](double v) { return b.log_one_plus ? std::log10(1.0 + v) : v; };
  const double u_lo = to_u(b.lo), u_hi = to_u(b.hi), width = (u_hi - u_lo) / b.bins;
  std::vector<double> counts(size_t(b.bins), 0.0);
  double below = 0, above = 0;
  for (const T value : values) {
    const double v = double(value);
    if (!std::isfinite(v) || v > b.hi) {
      above += 1;
      continue;
    }
    if (v < b.lo || (b.log_one_plus && v <= -1.0)) {
      below += 1;
      continue;
    }
    const int bin = std::min(b.bins - 1, int((to_u(v) - u_lo) / width));
    counts[size_t(std::max(bin, 0))] += 1;
  }
  const double total = double(values.size());
  OnePointPdf out;
  for (int i = 0; i < b.bins; ++i) {
    const double centre = u_lo + (i + 0.5) * width;
    out.x.push_back(b.log_one_plus ? std::pow(10.0, centre) : centre);
    out.density.push_back(counts[size_t(i)] / (total * width));
  }
  out.below = below / total;
  out.above = above / total;
  return out;
}

template OnePointPdf one_point_pdf(std::span<const float>, const PdfBinning&);
template OnePointPdf one_point_pdf(std::span<const double>, const PdfBinning&);

}  // namespace ff
