// Posterior outputs of `fieldflow denoise`. See include/fieldflow/recon/posterior_output.hpp.
#include "fieldflow/recon/posterior_output.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string_view>

#include "fieldflow/io/json.hpp"

namespace ff {

namespace {

const char* const kQuantileNames[] = {"q025", "q16", "q50", "q84", "q975"};

void write_cube(h5::Group& root, const std::string& name, const std::vector<double>& v, int n) {
  const hsize_t N = hsize_t(n);
  h5::Dataset d = root.create_dataset(name, h5::ElementType::float32, {N, N, N});
  d.write(v.data());
}

}  // namespace

void PosteriorColumns::append_to(std::vector<CsvColumn>& columns) const {
  for (size_t i = 0; i < names.size(); ++i) columns.push_back({names[i], &values[i]});
}

PosteriorColumns posterior_columns(const PosteriorResult& r) {
  PosteriorColumns c;
  const size_t bins = r.k_hmpc.size();
  const auto add = [&](std::string_view name, std::vector<double> v) {
    c.names.emplace_back(name);
    c.values.push_back(std::move(v));
  };
  for (size_t q = 0; q < PosteriorResult::kQuantileLevels.size(); ++q) {
    std::vector<double> v(bins);
    for (size_t b = 0; b < bins; ++b) v[b] = r.pk_quantiles[b][q];
    add(std::string("posterior_pk_") + kQuantileNames[q], std::move(v));
  }
  if (!r.r_quantiles.empty())
    for (size_t q = 0; q < PosteriorResult::kQuantileLevels.size(); ++q) {
      std::vector<double> v(bins);
      for (size_t b = 0; b < bins; ++b) v[b] = r.r_quantiles[b][q];
      add(std::string("posterior_r_") + kQuantileNames[q], std::move(v));
    }
  add("posterior_pk_rhat", r.pk_rhat);
  add("posterior_pk_ess", r.pk_ess);
  if (!r.mc_pk_of_mean.empty()) add("posterior_mean_mc_pk", r.mc_pk_of_mean);
  return c;
}

void write_posterior_datasets(h5::Group& root, const PosteriorResult& r,
                              const PosteriorSettings& s) {
  const int n = r.n;
  write_cube(root, "posterior_mean", r.mean, n);
  write_cube(root, "posterior_std", r.std, n);
  h5::Dataset mean = root.open_dataset("posterior_mean");
  mean.write_attribute_string("space", r.space);
  mean.write_attribute_string(
      "density", r.space == "latent"
                     ? "p(u|d), u the flow's latent (y = f^-1(u), delta = g(y)); mean of delta"
                     : "p(y|d), y the flow's preprocessed field (delta = g(y)); mean of delta");
  mean.write_attribute("samples_per_chain", int64_t(s.samples));
  mean.write_attribute("chains", int64_t(s.chains));
  mean.write_attribute("warmup", int64_t(s.warmup));
  mean.write_attribute("seed", int64_t(s.seed));
  mean.write_attribute("leapfrog_steps", int64_t(s.leapfrog_steps));
  mean.write_attribute_string("mass", s.mass);
  mean.write_attribute("acceptance_rate", r.acceptance_rate);
  mean.write_attribute("divergences", int64_t(r.divergences));
  mean.write_attribute("warmup_divergences", int64_t(r.warmup_divergences));
  if (r.kept_beyond_training >= 0) {
    mean.write_attribute("kept_draws_beyond_training", int64_t(r.kept_beyond_training));
    mean.write_attribute("most_masked_voxels_beyond_training",
                         int64_t(r.most_masked_beyond_training));
  }
  std::vector<double> steps;
  for (const auto& c : r.chains) steps.push_back(c.stats.step_size);
  mean.write_attribute_array("step_sizes", steps);

  const hsize_t N = hsize_t(n), kept = hsize_t(r.kept.size());
  h5::Dataset samples =
      root.create_dataset("posterior_samples", h5::ElementType::float32, {kept, N, N, N});
  std::vector<float> all;
  all.reserve(r.kept.size() * size_t(N * N * N));
  for (const auto& k : r.kept) all.insert(all.end(), k.begin(), k.end());
  if (kept > 0) samples.write(all.data());
  std::vector<int64_t> chain(r.kept_chain.begin(), r.kept_chain.end());
  samples.write_attribute_array("chain", chain);
  samples.write_attribute("thin", int64_t(s.thin));

  const PosteriorColumns cols = posterior_columns(r);
  std::vector<std::string> names = {"k_hmpc", "nmodes", "pk_of_mean"};
  std::vector<const std::vector<double>*> values = {&r.k_hmpc, &r.nmodes, &r.pk_of_mean};
  if (!r.r_of_mean.empty()) {
    names.push_back("r_of_mean");
    values.push_back(&r.r_of_mean);
    names.push_back("pk_truth");
    values.push_back(&r.pk_truth);
  }
  for (size_t i = 0; i < cols.names.size(); ++i) {
    names.push_back(cols.names[i]);
    values.push_back(&cols.values[i]);
  }
  const size_t bins = r.k_hmpc.size();
  std::vector<double> table(bins * names.size());
  for (size_t b = 0; b < bins; ++b)
    for (size_t j = 0; j < names.size(); ++j) table[b * names.size() + j] = (*values[j])[b];
  h5::Dataset pk = root.create_dataset("posterior_pk", h5::ElementType::float64,
                                       {hsize_t(bins), hsize_t(names.size())});
  pk.write(table.data());
  std::string header;
  for (const auto& name : names) header += (header.empty() ? "" : ", ") + name;
  pk.write_attribute_string("columns", header);
}

std::string posterior_json(const PosteriorResult& r, const PosteriorSettings& s) {
  std::ostringstream j;
  // No finite R-hat (too few draws to split) is written as null, never as a perfect-looking 0.
  double worst_rhat = NAN, min_ess = INFINITY;
  for (double v : r.pk_rhat)
    if (std::isfinite(v)) worst_rhat = std::isnan(worst_rhat) ? v : std::max(worst_rhat, v);
  for (double v : r.pk_ess)
    if (std::isfinite(v)) min_ess = std::min(min_ess, v);
  j << "{\"space\": " << json_string(r.space) << ", \"samples_per_chain\": " << s.samples
    << ", \"chains\": " << s.chains << ", \"warmup\": " << s.warmup << ", \"seed\": " << s.seed
    << ", \"leapfrog_steps\": " << s.leapfrog_steps << ", \"thin\": " << s.thin
    << ", \"mass\": " << json_string(s.mass)
    << ", \"acceptance_rate\": " << json_number(r.acceptance_rate)
    << ", \"divergences\": " << r.divergences
    << ", \"warmup_divergences\": " << r.warmup_divergences << ", \"step_sizes\": [";
  for (size_t c = 0; c < r.chains.size(); ++c)
    j << (c ? ", " : "") << json_number(r.chains[c].stats.step_size);
  j << "], \"gradient_evaluations\": " << r.gradient_evaluations
    << ", \"seconds\": " << json_number(r.seconds)
    << ", \"chain_seconds\": " << json_number(r.chain_seconds)
    << ", \"target_seconds\": " << json_number(r.target_seconds) << ", \"observer_seconds\": "
    << json_number(r.observer_seconds)
    // A leapfrog step's cost (the sampler's time outside the draws' measurement, per target call)
    // over one call of the target (the flow's density and gradient).
    << ", \"leapfrog_step_over_target_call\": "
    << json_number((r.chain_seconds - r.observer_seconds) / r.target_seconds)
    << ", \"pk_rhat_max\": " << json_number(worst_rhat)
    << ", \"pk_ess_min\": " << json_number(min_ess)
    << ", \"pk_ess_kmax\": " << json_number(r.pk_ess.empty() ? NAN : r.pk_ess.back())
    << ", \"ess_per_chain_second_kmax\": " << json_number(r.ess_per_second_kmax);
  if (r.coverage68)
    j << ", \"coverage68\": " << json_number(*r.coverage68)
      << ", \"coverage95\": " << json_number(*r.coverage95)
      << ", \"pk_in_central95\": " << json_number(*r.pk_coverage95);
  const auto count = [](long v) { return v >= 0 ? std::to_string(v) : std::string("null"); };
  j << ", \"kept_draws_beyond_training\": " << count(r.kept_beyond_training)
    << ", \"most_masked_voxels_beyond_training\": " << count(r.most_masked_beyond_training);
  j << "}";
  return j.str();
}

}  // namespace ff
