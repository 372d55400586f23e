#pragma once
// Power spectra with the README's conventions (those of Pylians3 and nbodykit):
//   delta_k = sum_x delta(x) exp(-i k.x)  (FFTW forward, unnormalised)
//   P(k) = (L^3 / N^6) |delta_k|^2,  P12 = (L^3 / N^6) Re(delta1_k delta2_k^*)
//   k_F = 2 pi / L; bin i holds i <= |k| / (W k_F) < i + 1 (with W = 1 the first bin is i = 1;
//   with W > 1 the first bin, i = 0, holds 0 < |k| < W k_F); |k| > k_N = pi N / L dropped;
//   the last bin is closed: modes with |k| exactly k_N on an edge belong to the bin below;
//   k of a bin = mean |k| of its modes; nmodes counts k and -k (r2c planes c = 0 and c = N/2
//   once, the others twice); k = 0 excluded; empty bins omitted (k_max_over_nyquist moves
//   the k_N cut).
// One fused parallel pass over the half-complex array bins all modes; sums are kept per x-plane
// and reduced in plane order, so the result does not depend on the thread count.
// The mass-assignment window prod_i sinc(pi n_i / N)^p is divided out when opts.mas names one.
#include <vector>

#include "fieldflow/core/fft.hpp"
#include "fieldflow/core/grid.hpp"
#include "fieldflow/stats/paint.hpp"

namespace ff {

struct PowerSpectrumOptions {
  MassAssignment mas = MassAssignment::none;  // window to divide out
  double kbin_width = 1.0;                    // bin width in units of k_F
  double shot_noise = 0.0;                    // subtracted from auto spectra, (Mpc/h)^3
  // Modes up to this multiple of k_N are binned; sqrt(3) keeps the cube's corners (every mode),
  // which a Gaussian prior over the whole grid needs.
  double k_max_over_nyquist = 1.0;
};

struct PowerSpectrum {
  std::vector<double> k;   // h/Mpc
  std::vector<double> pk;  // (Mpc/h)^3
  std::vector<double> nmodes;
};

struct CrossSpectrum {
  std::vector<double> k, pk1, pk2, pk12, r, nmodes;
};

// Refuses (Error naming `what`) a field that Fourier statistics cannot use: an odd or < 2 grid
// size, a value count other than n^3, a box size that is not positive and finite.
template <typename T>
void check_fourier_field(const BasicGrid<T>& field, const char* what);

// T = float transforms in single precision (accumulating in double), T = double in double.
// Cross: r = P12 / sqrt(P1 P2) of the reported (shot-noise subtracted) P1, P2; NaN where P1 P2 <=
// 0.
template <typename T>
PowerSpectrum measure_power_spectrum(const BasicGrid<T>& field,
                                     const PowerSpectrumOptions& opts = {});
// The same, transforming with a caller's RealFft3d of the field's size (its buffers are
// overwritten): lets a caller set the transform up while it reads the field.
template <typename T>
PowerSpectrum measure_power_spectrum(const BasicGrid<T>& field, RealFft3d<T>& fft,
                                     const PowerSpectrumOptions& opts = {});
// The field the caller left in fft.real() (e.g. read there straight from a file), transformed in
// place: no copy of the field at all.
template <typename T>
PowerSpectrum measure_power_spectrum_in_place(RealFft3d<T>& fft, double box_size_mpch,
                                              const PowerSpectrumOptions& opts = {});
template <typename T>
CrossSpectrum measure_cross_spectrum(const BasicGrid<T>& a, const BasicGrid<T>& b,
                                     const PowerSpectrumOptions& opts = {});

}  // namespace ff
