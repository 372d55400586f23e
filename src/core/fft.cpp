#include "fieldflow/core/fft.hpp"

#include <omp.h>

#include <cstdint>
#include <mutex>
#include <new>
#ifdef __linux__
#endif

#include "fieldflow/core/error.hpp"
#include "fieldflow/core/memory.hpp"

namespace ff {
namespace {

// FFTW's planner is not thread-safe; plan creation and destruction go through this lock.
std::mutex& planner_mutex() {
  static std::mutex m;
  return m;
}

void init_threads_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    fftw_init_threads();
    fftwf_init_threads();
  });
}

unsigned planner_flags(FftPlanning planning) {
  return planning == FftPlanning::measure ? FFTW_MEASURE : FFTW_ESTIMATE;
}

template <typename T>
struct Fftw;

template <>
struct Fftw<double> {
  static void* malloc(size_t bytes) { return fftw_malloc(bytes); }
  static void free(void* p) { fftw_free(p); }
  static void threads(int n) { fftw_plan_with_nthreads(n); }
  static void* r2c(int n, double* in, std::complex<double>* out, unsigned flags) {
    return fftw_plan_dft_r2c_3d(n, n, n, in, reinterpret_cast<fftw_complex*>(out), flags);
  }
  static void* c2r(int n, std::complex<double>* in, double* out, unsigned flags) {
    return fftw_plan_dft_c2r_3d(n, n, n, reinterpret_cast<fftw_complex*>(in), out, flags);
  }
  static void execute(void* plan) { fftw_execute(static_cast<fftw_plan>(plan)); }
  static void execute_r2c(void* plan, double* in, std::complex<double>* out) {
    fftw_execute_dft_r2c(static_cast<fftw_plan>(plan), in, reinterpret_cast<fftw_complex*>(out));
  }
  static int alignment_of(const double* p) { return fftw_alignment_of(const_cast<double*>(p)); }
  static void destroy(void* plan) { fftw_destroy_plan(static_cast<fftw_plan>(plan)); }
};

template <>
struct Fftw<float> {
  static void* malloc(size_t bytes) { return fftwf_malloc(bytes); }
  static void free(void* p) { fftwf_free(p); }
  static void threads(int n) { fftwf_plan_with_nthreads(n); }
  static void* r2c(int n, float* in, std::complex<float>* out, unsigned flags) {
    return fftwf_plan_dft_r2c_3d(n, n, n, in, reinterpret_cast<fftwf_complex*>(out), flags);
  }
  static void* c2r(int n, std::complex<float>* in, float* out, unsigned flags) {
    return fftwf_plan_dft_c2r_3d(n, n, n, reinterpret_cast<fftwf_complex*>(in), out, flags);
  }
  static void execute(void* plan) { fftwf_execute(static_cast<fftwf_plan>(plan)); }
  static void execute_r2c(void* plan, float* in, std::complex<float>* out) {
    fftwf_execute_dft_r2c(static_cast<fftwf_plan>(plan), in, reinterpret_cast<fftwf_complex*>(out));
  }
  static int alignment_of(const float* p) { return fftwf_alignment_of(const_cast<float*>(p)); }
  static void destroy(void* plan) { fftwf_destroy_plan(static_cast<fftwf_plan>(plan)); }
};

}  // namespace

template <typename T>
RealFft3d<T>::RealFft3d(int n, int threads, FftPlanning planning) : n_(n) {
  if (n < 2 || n % 2 != 0)
    throw Error("FFT", "grid size must be even and >= 2, got " + std::to_string(n));
  init_threads_once();
  real_ = static_cast<T*>(Fftw<T>::malloc(real_size() * sizeof(T)));
  complex_ =
      static_cast<std::complex<T>*>(Fftw<T>::malloc(complex_size() * sizeof(std::complex<T>)));
  if (!real_ || !complex_) {
    Fftw<T>::free(real_);
    Fftw<T>::free(complex_);
    throw std::bad_alloc();
  }
  advise_huge_pages(real_, real_size() * sizeof(T));
  advise_huge_pages(complex_, complex_size() * sizeof(std::complex<T>));
  std::lock_guard lock(planner_mutex());
  Fftw<T>::threads(threads > 0 ? threads : omp_get_max_threads());
  const unsigned flags = planner_flags(planning);
  forward_plan_ = Fftw<T>::r2c(n, real_, complex_, flags);
  inverse_plan_ = Fftw<T>::c2r(n, complex_, real_, flags);
  // FFTW_MEASURE scribbles on the buffers while planning; leave them zeroed.
  // (in parallel: first touch spreads the page faults over the threads)
  const size_t nr = real_size(), nc = complex_size();
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < nr; ++i) real_[i] = T(0);
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < nc; ++i) complex_[i] = T(0);
}

template <typename T>
RealFft3d<T>::~RealFft3d() {
  {
    std::lock_guard lock(planner_mutex());
    if (forward_plan_) Fftw<T>::destroy(forward_plan_);
    if (inverse_plan_) Fftw<T>::destroy(inverse_plan_);
  }
  Fftw<T>::free(real_);
  Fftw<T>::free(complex_);
}

template <typename T>
void RealFft3d<T>::forward() {
  Fftw<T>::execute(forward_plan_);
}

template <typename T>
void RealFft3d<T>::forward(const T* input) {
  // r2c plans preserve their input (FFTW_PRESERVE_INPUT is the default for r2c), so the
  // const_cast never leads to a write.
  if (Fftw<T>::alignment_of(input) == Fftw<T>::alignment_of(real_)) {
    Fftw<T>::execute_r2c(forward_plan_, const_cast<T*>(input), complex_);
    return;
  }
  const size_t size = real_size();
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < size; ++i) real_[i] = input[i];
  forward();
}

template <typename T>
void RealFft3d<T>::inverse() {
  Fftw<T>::execute(inverse_plan_);
}

template class RealFft3d<float>;
template class RealFft3d<double>;

}  // namespace ff
