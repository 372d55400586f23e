#pragma once
// Convergence diagnostics of MCMC chains of one scalar, as Stan computes them (Gelman et al., BDA3,
// ch. 11; Stan Reference Manual, "Effective sample size"): split R-hat and the effective sample
// size from Geyer's initial monotone sequence of autocorrelations combined over chains.
// chains[c][i] is draw i of chain c; all chains must have the same length.
#include <vector>

namespace ff {

using Chains = std::vector<std::vector<double>>;

// Autocovariance of one sequence at lags 0..max_lag, normalised by n (the biased estimator).
std::vector<double> autocovariance(const std::vector<double>& x, int max_lag);

// Effective sample size of the chains as given (Stan's ess, not split). Needs >= 4 draws per chain.
double effective_sample_size(const Chains& chains);
// The same after splitting every chain in halves (Stan's ess_bulk without rank normalisation).
double split_effective_sample_size(const Chains& chains);
// Split R-hat: R-hat of the chains cut in halves (a single chain gives two halves).
double split_rhat(const Chains& chains);
// Every chain cut into its first and second halves (an odd middle draw dropped).
Chains split_chains(const Chains& chains);

}  // namespace ff
