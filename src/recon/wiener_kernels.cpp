// The Wiener filter's PCG pass over the modes (include/fieldflow/recon/wiener.hpp, detail).
// Compiled once per Highway target (foreach_target.h) and dispatched at run time (core/simd.hpp):
// the baseline build's plain loop ran at two doubles per instruction, with shuffles to split the
// interleaved complex values from their per-mode coefficients, and cost about half an FFT round
// trip at 64^3.
#include "fieldflow/recon/wiener.hpp"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "recon/wiener_kernels.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "fieldflow/core/simd.hpp"

HWY_BEFORE_NAMESPACE();
namespace ff {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

detail::CgSums CgPass(size_t modes, const double* pc, const double* sl, double alpha, double beta,
                      double* p, double* s, double* u, double* r, double* c) {
  detail::CgSums sums;
  size_t m = 0;
  const hn::ScalableTag<double> d;
  const size_t lanes = hn::Lanes(d);
  if (lanes >= 2) {
    // A vector holds lanes / 2 complex modes; each mode's coefficient goes to both its lanes.
    alignas(64) static constexpr int64_t kPairs[16] = {0, 0, 1, 1, 2, 2, 3, 3,
                                                       4, 4, 5, 5, 6, 6, 7, 7};
    const auto pairs = hn::SetTableIndices(d, kPairs);
    const auto va = hn::Set(d, alpha), vb = hn::Set(d, beta);
    auto rr = hn::Zero(d), rz = hn::Zero(d), zz = hn::Zero(d);
    // m + lanes <= modes: the coefficient loads read `lanes` values and use the first half.
    for (; m + lanes <= modes; m += lanes / 2) {
      const auto vpc = hn::TableLookupLanes(hn::LoadU(d, pc + m), pairs);
      const auto vsl = hn::TableLookupLanes(hn::LoadU(d, sl + m), pairs);
      const size_t o = 2 * m;
      auto vr = hn::LoadU(d, r + o);
      const auto z = hn::Mul(vpc, vr);
      const auto vp = hn::MulAdd(vb, hn::LoadU(d, p + o), z);
      const auto vs = hn::MulAdd(vb, hn::LoadU(d, s + o), hn::MulAdd(vsl, hn::LoadU(d, c + o), z));
      hn::StoreU(vp, d, p + o);
      hn::StoreU(vs, d, s + o);
      hn::StoreU(hn::MulAdd(va, vp, hn::LoadU(d, u + o)), d, u + o);
      vr = hn::NegMulAdd(va, vs, vr);
      hn::StoreU(vr, d, r + o);
      const auto zn = hn::Mul(vpc, vr);
      hn::StoreU(hn::Mul(vsl, zn), d, c + o);
      const auto r2 = hn::Mul(vr, vr);
      rr = hn::Add(rr, r2);
      rz = hn::MulAdd(vpc, r2, rz);
      zz = hn::MulAdd(zn, zn, zz);
    }
    sums.rr = hn::GetLane(hn::SumOfLanes(d, rr));
    sums.rz = hn::GetLane(hn::SumOfLanes(d, rz));
    sums.zz = hn::GetLane(hn::SumOfLanes(d, zz));
  }
  for (; m < modes; ++m) {
    for (size_t k = 2 * m; k < 2 * m + 2; ++k) {
      const double z = pc[m] * r[k];
      p[k] = z + beta * p[k];
      s[k] = z + sl[m] * c[k] + beta * s[k];
      u[k] += alpha * p[k];
      r[k] -= alpha * s[k];
      const double zn = pc[m] * r[k];
      c[k] = sl[m] * zn;
      sums.rr += r[k] * r[k];
      sums.rz += pc[m] * r[k] * r[k];
      sums.zz += zn * zn;
    }
  }
  return sums;
}

}  // namespace HWY_NAMESPACE
}  // namespace ff
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace ff {
HWY_EXPORT(CgPass);

namespace detail {
CgSums wiener_cg_pass(size_t modes, const double* precond, const double* sqrt_lambda, double alpha,
                      double beta, double* p, double* s, double* u, double* r, double* c) {
  apply_simd_target_from_environment();
  return HWY_DYNAMIC_DISPATCH(CgPass)(modes, precond, sqrt_lambda, alpha, beta, p, s, u, r, c);
}
}  // namespace detail
}  // namespace ff
#endif  // HWY_ONCE
