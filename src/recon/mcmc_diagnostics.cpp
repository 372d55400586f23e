#include "fieldflow/recon/mcmc_diagnostics.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "fieldflow/core/error.hpp"

namespace ff {

namespace {

void check_chains(const Chains& chains, size_t min_draws) {
  if (chains.empty()) throw Error("diagnostics", "no chains");
  for (const auto& c : chains)
    if (c.size() != chains[0].size()) throw Error("diagnostics", "chains of different lengths");
  if (chains[0].size() < min_draws)
    throw Error("diagnostics", "needs at least " + std::to_string(min_draws) + " draws per chain");
}

double mean(const std::vector<double>& x) {
  return std::accumulate(x.begin(), x.end(), 0.0) / double(x.size());
}

// Sample variance (n - 1).
double sample_variance(const std::vector<double>& x) {
  const double m = mean(x);
  double sum = 0.0;
  for (double v : x) sum += (v - m) * (v - m);
  return sum / double(x.size() - 1);
}

}  // namespace

std::vector<double> autocovariance(const std::vector<double>& x, int max_lag) {
  const size_t n = x.size();
  const double m = mean(x);
  std::vector<double> centred(n);
  for (size_t i = 0; i < n; ++i) centred[i] = x[i] - m;
  std::vector<double> acov(size_t(max_lag) + 1, 0.0);
  for (int lag = 0; lag <= max_lag && size_t(lag) < n; ++lag) {
    double sum = 0.0;
    for (size_t i = 0; i + size_t(lag) < n; ++i) sum += centred[i] * centred[i + size_t(lag)];
    acov[size_t(lag)] = sum / double(n);
  }
  return acov;
}

double effective_sample_size(const Chains& chains) {
  check_chains(chains, 4);
  const size_t m = chains.size(), n = chains[0].size();
  std::vector<double> chain_mean(m), chain_var(m);
  for (size_t c = 0; c < m; ++c) {
    chain_mean[c] = mean(chains[c]);
    chain_var[c] = sample_variance(chains[c]);
  }
  const double mean_var = mean(chain_var);
  double var_plus = mean_var * double(n - 1) / double(n);
  if (m > 1) var_plus += sample_variance(chain_mean);
  // Constant chains: nothing to estimate (Stan returns NaN too).
  if (!(var_plus > 0)) return std::numeric_limits<double>::quiet_NaN();

  // Autocovariances are computed lag by lag, as far as Geyer's sequence needs them.
  std::vector<std::vector<double>> centred(m, std::vector<double>(n));
  for (size_t c = 0; c < m; ++c)
    for (size_t i = 0; i < n; ++i) centred[c][i] = chains[c][i] - chain_mean[c];
  const auto mean_acov = [&](size_t lag) {
    double total = 0.0;
    for (size_t c = 0; c < m; ++c) {
      double sum = 0.0;
      for (size_t i = 0; i + lag < n; ++i) sum += centred[c][i] * centred[c][i + lag];
      total += sum / double(n);
    }
    return total / double(m);
  };
  const auto rho = [&](size_t lag) { return 1.0 - (mean_var - mean_acov(lag)) / var_plus; };

  std::vector<double> rho_hat(n, 0.0);
  double rho_even = 1.0, rho_odd = rho(1);
  rho_hat[0] = rho_even;
  rho_hat[1] = rho_odd;
  // Geyer's initial positive sequence; the last pair is left as a bias term (antithetic chains).
  size_t s = 1;
  while (s < n - 4 && rho_even + rho_odd > 0) {
    rho_even = rho(s + 1);
    rho_odd = rho(s + 2);
    if (rho_even + rho_odd >= 0) {
      rho_hat[s + 1] = rho_even;
      rho_hat[s + 2] = rho_odd;
    }
    s += 2;
  }
  const size_t max_s = s;
  if (rho_even > 0) rho_hat[max_s + 1] = rho_even;
  // Initial monotone sequence.
  for (size_t t = 1; t + 3 <= max_s; t += 2) {
    if (rho_hat[t + 1] + rho_hat[t + 2] > rho_hat[t - 1] + rho_hat[t]) {
      rho_hat[t + 1] = 0.5 * (rho_hat[t - 1] + rho_hat[t]);
      rho_hat[t + 2] = rho_hat[t + 1];
    }
  }
  const double draws = double(m * n);
  double tau = -1.0 + rho_hat[max_s + 1];
  for (size_t t = 0; t < max_s; ++t) tau += 2.0 * rho_hat[t];
  tau = std::max(tau, 1.0 / std::log10(draws));
  return draws / tau;
}

Chains split_chains(const Chains& chains) {
  Chains halves;
  for (const auto& c : chains) {
    const size_t half = c.size() / 2;
    halves.emplace_back(c.begin(), c.begin() + long(half));
    halves.emplace_back(c.end() - long(half), c.end());
  }
  return halves;
}

double split_effective_sample_size(const Chains& chains) {
  check_chains(chains, 8);
  return effective_sample_size(split_chains(chains));
}

double split_rhat(const Chains& chains) {
  check_chains(chains, 4);
  const Chains halves = split_chains(chains);
  const size_t m = halves.size(), n = halves[0].size();
  std::vector<double> chain_mean(m), chain_var(m);
  for (size_t c = 0; c < m; ++c) {
    chain_mean[c] = mean(halves[c]);
    chain_var[c] = sample_variance(halves[c]);
  }
  const double between = double(n) * sample_variance(chain_mean);
  const double within = mean(chain_var);
  if (!(within > 0)) return std::numeric_limits<double>::quiet_NaN();
  return std::sqrt((between / within + double(n) - 1.0) / double(n));
}

}  // namespace ff
