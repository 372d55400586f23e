#pragma once
// `fieldflow calibrate`: after training, with the rest of the flow frozen, fitted on the training
// fields: a spectral calibration (SpectralCalibration, the flow's first step: one scale per |k|
// bin), the correlated base's P(k), or the preprocessing's marginal map (one monotone map per
// voxel value). Maximum likelihood gives the few largest modes of a field almost no weight, so
// the trained couplings leave their power off, and the samples' one-point tail comes out too
// heavy (docs/train.md); each fit keeps log p a density over delta. `calibrate:` is declared once
// here; docs/train.md has its table.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "fieldflow/core/grid.hpp"
#include "fieldflow/core/settings.hpp"
#include "fieldflow/flow/checkpoint.hpp"
#include "fieldflow/flow/flow.hpp"
#include "fieldflow/stats/power_spectrum.hpp"

namespace ff {

class Config;

struct CalibrateSettings {
  std::string checkpoint;           // the trained flow
  std::vector<std::string> fields;  // grid files or stacks: the training fields
  std::string out;                  // the calibrated checkpoint written
  int bins = 0;                     // bins per k_N; 0: grid / 2 (one fundamental wide)
  std::string method = "power";     // power (of y) | likelihood | base | marginal
  int iterations = 5;               // updates of the scales
  int samples = 256;                // power, marginal: flow samples drawn
  uint64_t seed = 0;                // power, marginal: the samples' seed
  std::string match = "y";          // power: the P(k) matched, of y | delta
  bool zero_mean = true;            // power, match delta: samples against their own mean density
  double mean_tolerance = 0;        // power, marginal: keep draws with |mean delta| <= this (> 0)
  double k_max_hmpc = 0;            // power, likelihood: fit only bins starting below (0: all)
  int knots = 64;                   // marginal: knots of the map
};
const SettingsTable<CalibrateSettings>& calibrate_settings_table();
// The `calibrate:` section of config (unknown keys refused).
CalibrateSettings read_calibrate_settings(Config& config);
std::string calibrate_settings_yaml(const CalibrateSettings& s);

// One pass at the current scales.
struct CalibrationPass {
  double nll_bits_per_voxel = 0;  // mean over the fields, a density over delta (power: NaN
                                  // except on the first and last pass)
  double largest_step = 0;        // largest |change| of a log-scale made after this pass (0: none)
  int bins_kept = 0;              // bins left unchanged (nothing usable measured)
  bool rejected = false;          // likelihood: the NLL rose, so back to the best point
  // Per bin, 1 at the solution. likelihood: -<g, y_b> / n_b over the fields (> 1: the flow's
  // density is narrower than the fields in that bin). power: the samples' P(k) of y (or delta) over
  // the fields' (NaN where the fields have no power: k = 0 of delta). base: the fields' latent P(k)
  // over the base's, per P(k) bin (before the update).
  std::vector<double> bin_ratio;
};

enum class CalibrationMethod { likelihood, power, base, marginal };
CalibrationMethod parse_calibration_method(const std::string& text);

struct CalibrationOptions {
  CalibrationMethod method = CalibrationMethod::power;
  int iterations = 5;
  int samples = 256;
  uint64_t seed = 0;
  double k_max_over_nyquist = 0;  // power, likelihood: bins starting at or above keep their scale
  bool match_delta = false;       // power: match P(k) of delta, not of y
  bool zero_mean = true;          // match_delta: each ranked sample's delta against its own mean
  double mean_tolerance = 0;      // > 0: the samples as `fieldflow sample` with mean_tolerance
};

// base: no calibration is needed or touched; the correlated base's P(k) table is replaced by the
// fields' latent P(k) (per estimator bin, every mode), the maximum-likelihood base given the rest
// of the flow, in one update (iterations 0: measure only). Returns 2 passes (1 at iterations 0).
// Otherwise: fits flow.calibration()'s log-scales to fields (delta grids of the flow's grid), every
// other parameter frozen; the k = 0 scale stays as it is, and so do the scales of the bins that
// start at or above k_max_over_nyquist when it is positive (the field's mean is a one-point
// property the couplings model). Returns iterations + 1 passes (the last one only measures). Throws
// when the flow has no calibration.
//  - likelihood: maximum likelihood. With g = d log p / dy at the preprocessed field y, the
//    derivative of the mean log p with respect to log a_b is n_b + <g, y_b> (n_b: modes of bin b;
//    y_b: y restricted to the bin), so only input gradients are needed. The step
//    1/2 log(n_b / -<g, y_b>) is exact when the density is Gaussian in y (then -<g, y_b> grows as
//    a_b^2); a pass whose NLL rose goes back to the best point with half the step.
//  - power: moment matching. `samples` samples at temperature 1, drawn once; each update
//    multiplies a_b by sqrt(P_samples / P_fields) in bin b (samples are F^-1(F y / a) of the rest
//    of the flow's draws, so a larger a_b lowers their power), of y (exact in one update) or,
//    with match_delta, of delta after the samples' values are put by rank onto the fields'
//    one-point distribution of delta (the limit of the marginal map; a few updates) and, with
//    zero_mean, each sample's delta then taken against its own mean density (set_mean_delta_zero
//    with the preprocessing's eps), as `fieldflow sample` gives it. With mean_tolerance > 0 the
//    draws are those `fieldflow sample` keeps with that tolerance, each draw's mean delta taken
//    under `preprocessing` as it stands (its marginal map included).
std::vector<CalibrationPass> fit_spectral_calibration(
    MultiScaleFlow<float>& flow, const Preprocessing& preprocessing,
    const std::vector<GridF>& fields, const CalibrationOptions& options,
    const std::function<void(int iteration, const CalibrationPass&)>& progress = nullptr);

// The marginal map (method marginal): the flow is left as it is; what changes is the
// preprocessing's map h of the standardised value u = (t(delta) - mean) / std, replaced by
// h = Q_samples o F_fields (F_fields: the fields' distribution function of u over every voxel;
// Q_samples: the quantile function of y over every voxel of `samples` samples at temperature 1,
// those `fieldflow sample` draws with `seed` and `mean_tolerance`, each draw's mean delta taken
// under the given preprocessing, its map as it stands). Samples y then map to values of u with the
// fields' one-point distribution (exactly at the knots), whatever the map was before, in one
// update. Knots at the quantiles of `knots` normal scores evenly spaced in [-z, z], z = min(5,
// the score with 10 of the fewer values beyond); knots closer than 1e-9 of the range are dropped.
struct MarginalFit {
  Preprocessing preprocessing;           // the given one with the new map
  double nll_before = 0, nll_after = 0;  // mean over the fields, bits per voxel over delta
  std::vector<double> score;             // the normal score of each knot kept
};
MarginalFit fit_marginal_map(MultiScaleFlow<float>& flow, const Preprocessing& preprocessing,
                             const std::vector<GridF>& fields, int knots, int samples,
                             uint64_t seed, double mean_tolerance = 0);
// The range of y the training data recorded (data.y_min, y_max), carried from the map of `from`
// to that of `to` (the same values of u). Unrecorded ranges stay unrecorded.
void carry_training_range(const Preprocessing& from, const Preprocessing& to, TrainingData& data);

// P(k) of the flow's latents of one field (delta on the flow's grid, in the box of the base's
// table): u = f(y) put back on the grid, every mode to sqrt(3) k_N in the estimator's bins (those
// of the table `base.power: measured` writes), and P at k = 0, L^3 (mean of u)^2.
// P at k = 0 as the trainer and the refits give it to the base: at least 1% of the first bin's P
// (a field's mean of y is nearly fixed, with identity preprocessing exactly: a degenerate mode).
inline double floored_pk0(double pk0, double first_bin_pk) {
  return std::max(pk0, 0.01 * first_bin_pk);
}
struct LatentPower {
  PowerSpectrum pk;
  double pk0 = 0.0;
};
LatentPower latent_power_spectrum(MultiScaleFlow<float>& flow, const Preprocessing& preprocessing,
                                  const GridF& field);
// The mean of per-field latent spectra given as rows (per field: P of each bin of `binning`, then
// P at k = 0), summed in field order: the same for any split of the fields over ranks.
LatentPower mean_latent_power(const PowerSpectrum& binning, const std::vector<double>& rows);
// Replaces the flow's correlated base P(k) table by `latent` (a mean of the above over `fields`
// fields: the maximum-likelihood base given the rest of the flow); a bin without a positive finite
// value keeps the current table's. P at k = 0 takes the fields' mean too, floored at 1% of the
// first bin's P (the trainer's rule for base.pk0), and stays as it is for one field, whose mean
// alone says nothing of its variance. Returns latent / current per bin (k > 0).
std::vector<double> set_base_to_latent_power(MultiScaleFlow<float>& flow, const LatentPower& latent,
                                             size_t fields);

// The flow of `trained` with a spectral calibration of `bins` bins per k_N in front (its own
// state copied; the calibration the identity, or trained's own when it has one of that size).
std::unique_ptr<MultiScaleFlow<float>> with_spectral_calibration(MultiScaleFlow<float>& trained,
                                                                 int bins);

}  // namespace ff
