#pragma once
// Threaded FFTW plans for cubic periodic grids, reused between calls.
//
// Convention (the README's): forward is FFTW's unnormalised r2c with sign -1,
//   delta_k = sum_x delta(x) exp(-i k.x);
// inverse is the unnormalised c2r, so inverse(forward(x)) = N^3 x.
// The half-complex layout is [n][n][n/2 + 1]: mode (a, b, c) with c <= n/2.
#include <fftw3.h>

#include <complex>
#include <cstddef>
#include <memory>

namespace ff {

// Signed integer wavenumber of FFT index i on an axis of n points: 0, 1, ..., n/2, -(n/2 - 1), ...,
// -1.
inline int fft_wavenumber(int i, int n) {
  return i <= n / 2 ? i : i - n;
}

// Multiplicity of half-complex mode c (0..n/2) in the full n^3 spectrum: 1 for c = 0 and, n even,
// the Nyquist plane c = n/2 (their conjugates are themselves); 2 for every other c.
constexpr int half_complex_weight(int c, int n) {
  return (c == 0 || 2 * c == n) ? 1 : 2;
}

enum class FftPlanning { estimate, measure };

template <typename T>
class RealFft3d {
 public:
  // threads <= 0 uses omp_get_max_threads().
  explicit RealFft3d(int n, int threads = 0, FftPlanning planning = FftPlanning::estimate);
  ~RealFft3d();
  RealFft3d(const RealFft3d&) = delete;
  RealFft3d& operator=(const RealFft3d&) = delete;

  int n() const { return n_; }
  size_t real_size() const { return size_t(n_) * n_ * n_; }
  size_t complex_size() const { return size_t(n_) * n_ * (n_ / 2 + 1); }

  // The plans work in place on these aligned buffers: fill real(), call forward(), read complex().
  T* real() { return real_; }
  std::complex<T>* complex() { return complex_; }

  void forward();  // real() -> complex()
  // input (n^3 values, left unchanged) -> complex(), without copying into real() when input is
  // aligned like real() (FFTW's new-array execute); otherwise copies it there first.
  void forward(const T* input);
  void inverse();  // complex() -> real(); complex() is overwritten (FFTW's c2r destroys its input)

 private:
  int n_;
  T* real_ = nullptr;
  std::complex<T>* complex_ = nullptr;
  void* forward_plan_ = nullptr;
  void* inverse_plan_ = nullptr;
};

extern template class RealFft3d<float>;
extern template class RealFft3d<double>;

}  // namespace ff
