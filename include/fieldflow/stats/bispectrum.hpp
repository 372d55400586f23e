#pragma once
// The equilateral bispectrum B(k) and reduced bispectrum Q(k) by the FFT shell estimator, in
// Pylians3's convention (Pk_library.Bk; docs/statistics.md "Bispectrum"):
//   shell S_i: the modes with k_i - W k_F <= |k| < k_i + W k_F, k != 0 (all modes of the FFT cube,
//              also those beyond k_N in its corners), centres k_i = i W k_F up to k_N;
//   d_i(x) = IFFT[delta_k 1_{S_i}],  I_i(x) = IFFT[1_{S_i}];
//   B(k_i) = (L^6 / N^9) sum_x d_i^3 / sum_x I_i^3
//          = (L^6 / N^9) mean of delta_k1 delta_k2 delta_k3 over the ordered triplets of S_i with
//            k1 + k2 + k3 = 0 (mod N, the grid's periodicity);
//   P(k_i) = (L^3 / N^6) mean of |delta_k|^2 over S_i;  Q = B / (3 P^2).
// FFTs are FFTW's unnormalised forward (delta_k = sum_x delta(x) e^{-i k.x}) and backward
// transforms; the window prod_i sinc(pi n_i / N)^p is divided out of every mode when opts.mas
// names one, as for the power spectrum. Shells without triangles are omitted.
#include <complex>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "fieldflow/core/fft.hpp"
#include "fieldflow/core/grid.hpp"
#include "fieldflow/stats/paint.hpp"

namespace ff {

struct BispectrumOptions {
  MassAssignment mas = MassAssignment::none;  // window to divide out
  double kbin_width = 1.0;  // W: shell centres i W k_F and half-width W k_F (W = 1: Pylians3)
};

struct Bispectrum {
  std::vector<double> k;           // shell centre k_i, h/Mpc
  std::vector<double> bk;          // B, (Mpc/h)^6
  std::vector<double> qk;          // Q = B / (3 P^2)
  std::vector<double> pk;          // P on the same shell, (Mpc/h)^3
  std::vector<double> ntriangles;  // ordered triplets (k1, k2, k3) of the shell closing mod N
};

// Called after each shell: (shells done, shells in all).
using BispectrumProgress = std::function<void(int done, int total)>;

// The shells and their triangle counts depend on the grid only: set up once (one inverse FFT
// per shell), then measure as many fields of that grid as needed (one inverse FFT per shell each).
class EquilateralBispectrum {
 public:
  EquilateralBispectrum(int n, double box_size_mpch, const BispectrumOptions& opts = {},
                        BispectrumProgress progress = {});
  EquilateralBispectrum(const EquilateralBispectrum&) = delete;
  EquilateralBispectrum& operator=(const EquilateralBispectrum&) = delete;

  int n() const { return n_; }
  double box_size_mpch() const { return box_size_mpch_; }
  int shells() const { return int(centre_.size()); }

  // A field of this grid and box (anything else is an Error naming `what`).
  template <typename T>
  Bispectrum measure(const BasicGrid<T>& field, const char* what = "bispectrum: field");

 private:
  template <typename T>
  void transform(const BasicGrid<T>& field);
  // Fills fft_ with the (window-compensated) transform's modes in shell s, or with ones.
  void select_shell(int s, bool indicator);
  double cube_sum();  // sum_x fft_->real()^3, independent of the thread count

  int n_;
  double box_size_mpch_;
  BispectrumOptions opts_;
  BispectrumProgress progress_;
  std::vector<double> centre_;  // shell centres in units of k_F
  std::vector<double> lo_sq_;   // shell s holds lo_sq_[s] <= |n|^2 < hi_sq_[s] (rounding-safe)
  std::vector<double> hi_sq_;
  std::vector<double> triangles_;  // sum_x I_s^3 / N^3 per shell
  std::vector<double> modes_;      // modes per shell (full complex cube)
  std::vector<double> compensation_;
  std::vector<std::complex<double>> modes_of_field_;  // the field's transform, compensated
  std::unique_ptr<RealFft3d<double>> fft_;
};

// One field, shells set up on the fly.
template <typename T>
Bispectrum measure_equilateral_bispectrum(const BasicGrid<T>& field,
                                          const BispectrumOptions& opts = {},
                                          BispectrumProgress progress = {});

}  // namespace ff
