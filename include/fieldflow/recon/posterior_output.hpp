#pragma once
// What `fieldflow denoise` writes about the posterior (docs/denoise.md, "Posterior samples"):
// datasets in its HDF5 file, columns of its metrics CSV and an object of its JSON summary.
#include <string>
#include <vector>

#include "fieldflow/io/csv.hpp"
#include "fieldflow/io/hdf5.hpp"
#include "fieldflow/recon/posterior.hpp"

namespace ff {

// /posterior_mean, /posterior_std (float32 [n,n,n]), /posterior_samples (float32 [K,n,n,n], the
// thinned samples, attribute `chain` giving each one's chain), and /posterior_pk (float64 table,
// one row per k bin; attribute `columns` names them), with the settings and the sampler's
// statistics as attributes of /posterior_mean.
void write_posterior_datasets(h5::Group& root, const PosteriorResult& r,
                              const PosteriorSettings& s);

// Per k bin (the metrics CSV's rows): the samples' P(k) and r(k) quantiles, split R-hat and ESS of
// the samples' P(k). Names and values are kept here so the CSV columns can point at them.
struct PosteriorColumns {
  std::vector<std::string> names;
  std::vector<std::vector<double>> values;
  // Appends (name, values) pairs to columns, which then point into this object.
  void append_to(std::vector<CsvColumn>& columns) const;
};
PosteriorColumns posterior_columns(const PosteriorResult& r);

// The JSON object (without a key) summarising the run: space, settings, acceptance, divergences,
// step sizes, seconds, ESS per second in the highest k bin, coverage, worst R-hat.
std::string posterior_json(const PosteriorResult& r, const PosteriorSettings& s);

}  // namespace ff
