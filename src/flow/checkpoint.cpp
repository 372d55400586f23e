// The flow checkpoint schema over io array files. See include/fieldflow/flow/checkpoint.hpp.
#include "fieldflow/flow/checkpoint.hpp"

#include <cmath>

#include "fieldflow/core/config.hpp"
#include "fieldflow/core/error.hpp"
#include "fieldflow/core/provenance.hpp"
#include "fieldflow/core/simd.hpp"
#include "fieldflow/core/text.hpp"

namespace ff {

namespace {
const char* kFormat = "fieldflow-flow-checkpoint";
const std::string kExtra = "extra.";
}  // namespace

PreprocessTransform parse_preprocess_transform(const std::string& text) {
  if (text == "identity") return PreprocessTransform::identity;
  if (text == "log1p") return PreprocessTransform::log1p;
  throw Error("preprocessing.transform", "expected identity or log1p, got \"" + text + "\"");
}

const char* to_string(PreprocessTransform transform) {
  return transform == PreprocessTransform::identity ? "identity" : "log1p";
}

double Preprocessing::forward(double delta) const {
  double t = delta;
  if (transform == PreprocessTransform::log1p) {
    if (!(delta + eps > -1))
      throw Error("preprocessing", "log1p needs delta > -1 - eps (eps = " + format_number(eps) +
                                       "), got " + format_number(delta));
    t = std::log1p(delta + eps);
  }
  return marginal.value((t - mean) / std);
}

double Preprocessing::inverse(double y) const {
  const double t = marginal.inverse(y) * std + mean;
  return transform == PreprocessTransform::log1p ? std::expm1(t) - eps : t;
}

double Preprocessing::inverse_derivative(double y) const {
  const double u = marginal.inverse(y);  // the standardised value
  const double dt_du =
      transform == PreprocessTransform::log1p ? std * std::exp(u * std + mean) : std;
  return dt_du / marginal.derivative(u);
}

// dy/ddelta = h'(u) / (std (1 + delta + eps)) under log1p, h'(u) / std otherwise, with u the
// standardised value.
double Preprocessing::log_jacobian(double delta) const {
  const bool log1p = transform == PreprocessTransform::log1p;
  const double t = log1p ? std::log1p(delta + eps) : delta;
  const double standard = log1p ? -std::log(std) - t : -std::log(std);
  if (marginal.empty()) return standard;
  return standard + std::log(marginal.derivative((t - mean) / std));
}

double Preprocessing::log_jacobian_derivative(double delta) const {
  const bool log1p = transform == PreprocessTransform::log1p;
  const double standard = log1p ? -1.0 / (1.0 + delta + eps) : 0.0;
  if (marginal.empty()) return standard;
  // d/ddelta log h'(u(delta)) = (h''/h')(u) du/ddelta.
  const double t = log1p ? std::log1p(delta + eps) : delta;
  const double du_ddelta = log1p ? 1.0 / (std * (1.0 + delta + eps)) : 1.0 / std;
  return standard + marginal.log_derivative_slope((t - mean) / std) * du_ddelta;
}

// The sum of log_jacobian over the values with one log1p per value (forward and log_jacobian
// called per value took three logarithms: a training step's data loading was mostly these).
template <typename T>
double Preprocessing::apply(T* values, size_t count) const {
  const double log_std = std::log(std);
  double log_sum = 0.0;  // of t'(delta) (log1p) and h'(u)
  for (size_t i = 0; i < count; ++i) {
    const double delta = values[i];
    double t = delta;
    if (transform == PreprocessTransform::log1p) {
      if (!(delta + eps > -1)) forward(delta);  // throws, with forward's message
      t = std::log1p(delta + eps);
      log_sum -= t;
    }
    const double u = (t - mean) / std;
    if (marginal.empty()) {
      values[i] = T(u);
    } else {
      values[i] = T(marginal.value(u));
      log_sum += std::log(marginal.derivative(u));
    }
  }
  return -double(count) * log_std + log_sum;
}

template <typename T>
void Preprocessing::invert(T* values, size_t count) const {
  for (size_t i = 0; i < count; ++i) values[i] = T(inverse(double(values[i])));
}

template <typename T>
void Preprocessing::chain_gradient(const T* delta, T* grad, size_t count) const {
  for (size_t i = 0; i < count; ++i) {
    const double d = delta[i];
    const double dy_ddelta = std::exp(log_jacobian(d));  // positive: the map is increasing
    grad[i] = T(double(grad[i]) * dy_ddelta + log_jacobian_derivative(d));
  }
}

void Preprocessing::validate(const std::string& where) const {
  if (!std::isfinite(mean)) throw Error(where, "preprocessing mean is not finite");
  if (!(std > 0) || !std::isfinite(std))
    throw Error(where, "preprocessing std must be positive and finite, got " + format_number(std));
  if (!(eps >= 0) || !std::isfinite(eps))
    throw Error(where, "preprocessing eps must be >= 0 and finite, got " + format_number(eps));
}

template double Preprocessing::apply(float*, size_t) const;
template double Preprocessing::apply(double*, size_t) const;
template void Preprocessing::invert(float*, size_t) const;
template void Preprocessing::invert(double*, size_t) const;
template void Preprocessing::chain_gradient(const float*, float*, size_t) const;
template void Preprocessing::chain_gradient(const double*, double*, size_t) const;

namespace {

void check_training_data(const std::string& where, const TrainingData& data, const FlowSpec& spec) {
  if (!(data.box_size_mpch > 0) || !std::isfinite(data.box_size_mpch))
    throw Error(where, "the training data's box size must be positive and finite, got " +
                           format_number(data.box_size_mpch) + " Mpc/h");
  if (!(data.redshift > -1) || !std::isfinite(data.redshift))
    throw Error(where, "the training data's redshift must be finite and > -1, got " +
                           format_number(data.redshift));
  if (data.delta_pk_k_hmpc.size() != data.delta_pk.size())
    throw Error(where, "the training data's P(k) has " +
                           std::to_string(data.delta_pk_k_hmpc.size()) + " k values and " +
                           std::to_string(data.delta_pk.size()) + " powers");
  for (size_t i = 0; i < data.delta_pk.size(); ++i)
    if (!(data.delta_pk_k_hmpc[i] > 0) || !std::isfinite(data.delta_pk_k_hmpc[i]) ||
        (i > 0 && !(data.delta_pk_k_hmpc[i] > data.delta_pk_k_hmpc[i - 1])) ||
        !(data.delta_pk[i] >= 0) || !std::isfinite(data.delta_pk[i]))
      throw Error(where,
                  "the training data's P(k) needs increasing positive k and finite P >= 0 "
                  "(row " +
                      std::to_string(i) + ")");
  const bool has_range = !std::isnan(data.y_min) || !std::isnan(data.y_max);
  if (has_range &&
      !(std::isfinite(data.y_min) && std::isfinite(data.y_max) && data.y_min < data.y_max))
    throw Error(where, "the training data's range of y must be finite with y_min < y_max, got " +
                           format_number(data.y_min) + " .. " + format_number(data.y_max));
  if (spec.base == BaseKind::correlated_gaussian &&
      std::abs(spec.base_box_size_mpch - data.box_size_mpch) > 1e-9 * data.box_size_mpch)
    throw Error(where, "the correlated base's box (" + format_number(spec.base_box_size_mpch) +
                           " Mpc/h) differs from the training data's (" +
                           format_number(data.box_size_mpch) + " Mpc/h)");
}

template <typename V>
void require_finite(const std::string& where, const std::string& name, const V& values) {
  for (size_t i = 0; i < values.size(); ++i)
    if (!std::isfinite(double(values[i])))
      throw Error(where, name + " holds a non-finite value at index " + std::to_string(i));
}

// Fixed mixings must be what the flow's log-determinant assumes: permutation and orthogonal
// matrices orthogonal (|det| = 1), lu's P a permutation and its signs +-1.
void check_mixing(const std::string& where, const ChannelMixing<float>& m, int channels) {
  const size_t C = size_t(channels);
  if (m.kind() == MixingKind::lu) {
    std::vector<bool> seen(C, false);
    for (int r : m.perm) {
      if (r < 0 || size_t(r) >= C || seen[size_t(r)])
        throw Error(where, "mixing " + m.name() + ": P is not a permutation");
      seen[size_t(r)] = true;
    }
    for (double s : m.sign)
      if (s != 1.0 && s != -1.0) throw Error(where, "mixing " + m.name() + ": signs must be +-1");
    return;
  }
  for (size_t i = 0; i < C; ++i)
    for (size_t j = 0; j < C; ++j) {
      double dot = 0.0;
      for (size_t k = 0; k < C; ++k) dot += m.fixed[i * C + k] * m.fixed[j * C + k];
      if (std::abs(dot - (i == j ? 1.0 : 0.0)) > 1e-9)
        throw Error(where, "mixing " + m.name() + ": the fixed matrix is not orthogonal");
    }
  if (m.kind() == MixingKind::permutation)
    for (double w : m.fixed)
      if (w != 0.0 && w != 1.0)
        throw Error(where, "mixing " + m.name() + ": not a permutation matrix");
}

std::vector<double> as_doubles(const std::vector<int>& v) {
  return {v.begin(), v.end()};
}

}  // namespace

void save_flow_checkpoint(const std::string& path, MultiScaleFlow<float>& flow,
                          const Preprocessing& preprocessing, const TrainingData& data,
                          Adam<float>* adam, const ArrayFile* extras,
                          const std::string& settings_yaml) {
  preprocessing.validate(path);
  check_training_data(path, data, flow.spec());
  ArrayFile f;
  f.format = kFormat;
  f.version = kFlowCheckpointVersion;
  f.texts["architecture"] = flow_spec_yaml(flow.spec());
  f.provenance = provenance(settings_yaml.empty() ? f.texts["architecture"] : settings_yaml,
                            simd_target_name());
  f.texts["preprocessing.transform"] = to_string(preprocessing.transform);
  f.numbers["preprocessing.mean"] = preprocessing.mean;
  f.numbers["preprocessing.std"] = preprocessing.std;
  f.numbers["preprocessing.eps"] = preprocessing.eps;
  if (!preprocessing.marginal.empty()) {
    f.doubles["preprocessing.marginal.t"] = preprocessing.marginal.t_knots();
    f.doubles["preprocessing.marginal.y"] = preprocessing.marginal.y_knots();
  }
  f.numbers["data.box_size_mpch"] = data.box_size_mpch;
  f.numbers["data.redshift"] = data.redshift;
  if (!data.delta_pk.empty()) {
    f.doubles["data.delta_pk.k_hmpc"] = data.delta_pk_k_hmpc;
    f.doubles["data.delta_pk.pk"] = data.delta_pk;
  }
  if (std::isfinite(data.y_min) && std::isfinite(data.y_max)) {
    f.numbers["data.y_min"] = data.y_min;
    f.numbers["data.y_max"] = data.y_max;
  }
  const std::vector<Param<float>*> params = flow.params();
  for (Param<float>* p : params) f.floats["param." + p->name] = p->value;
  for (ActNorm<float>* a : flow.actnorms())
    f.numbers["actnorm." + a->name() + ".initialized"] = a->initialized ? 1.0 : 0.0;
  for (ChannelMixing<float>* m : flow.mixings()) {
    const std::string key = "mixing." + m->name();
    if (m->kind() == MixingKind::lu) {
      f.doubles[key + ".perm"] = as_doubles(m->perm);
      f.doubles[key + ".sign"] = m->sign;
    } else {
      f.doubles[key + ".matrix"] = m->fixed;
    }
  }
  if (adam) {
    const AdamOptions& o = adam->options();
    f.numbers["adam.step"] = double(adam->steps_taken());
    f.numbers["adam.lr"] = o.lr;
    f.numbers["adam.beta1"] = o.beta1;
    f.numbers["adam.beta2"] = o.beta2;
    f.numbers["adam.eps"] = o.eps;
    f.numbers["adam.weight_decay"] = o.weight_decay;
    f.numbers["adam.warmup_steps"] = double(o.warmup_steps);
    f.numbers["adam.total_steps"] = double(o.total_steps);
    f.numbers["adam.min_lr_ratio"] = o.min_lr_ratio;
    f.numbers["adam.clip_grad_norm"] = o.clip_grad_norm;
    for (size_t k = 0; k < params.size(); ++k) {
      f.floats["adam.m." + params[k]->name] = adam->first_moments()[k];
      f.floats["adam.v." + params[k]->name] = adam->second_moments()[k];
    }
  }
  if (extras) {
    for (const auto& [name, v] : extras->floats) f.floats[kExtra + name] = v;
    for (const auto& [name, v] : extras->doubles) f.doubles[kExtra + name] = v;
    for (const auto& [name, v] : extras->texts) f.texts[kExtra + name] = v;
    for (const auto& [name, v] : extras->numbers) f.numbers[kExtra + name] = v;
  }
  write_array_file(path, f);
}

FlowCheckpoint load_flow_checkpoint(const std::string& path) {
  const ArrayFile f =
      read_array_file(path, kFormat, kFlowCheckpointVersion, kFlowCheckpointVersion);
  auto text = [&](const std::string& key) {
    auto it = f.texts.find(key);
    if (it == f.texts.end()) throw Error(path, "checkpoint has no " + key);
    return it->second;
  };
  auto number = [&](const std::string& key) {
    auto it = f.numbers.find(key);
    if (it == f.numbers.end()) throw Error(path, "checkpoint has no " + key);
    if (!std::isfinite(it->second)) throw Error(path, key + " is not finite");
    return it->second;
  };
  auto doubles = [&](const std::string& key, size_t size) {
    auto it = f.doubles.find(key);
    if (it == f.doubles.end()) throw Error(path, "checkpoint has no " + key);
    if (it->second.size() != size)
      throw Error(path, key + " has " + std::to_string(it->second.size()) + " values, expected " +
                            std::to_string(size));
    require_finite(path, key, it->second);
    return it->second;
  };
  FlowCheckpoint out;
  out.path = path;
  out.provenance = f.provenance;
  Config arch = Config::parse(text("architecture"), path + ":architecture");
  FlowSpec spec = read_flow_spec(arch.root().section("flow"));
  arch.finish();
  out.flow = std::make_unique<MultiScaleFlow<float>>(spec);
  try {
    out.preprocessing.transform = parse_preprocess_transform(text("preprocessing.transform"));
  } catch (const Error& e) {
    throw Error(path, e.what());
  }
  out.preprocessing.mean = number("preprocessing.mean");
  out.preprocessing.std = number("preprocessing.std");
  out.preprocessing.eps = number("preprocessing.eps");
  if (f.doubles.count("preprocessing.marginal.t") || f.doubles.count("preprocessing.marginal.y")) {
    const size_t knots = f.doubles.count("preprocessing.marginal.t")
                             ? f.doubles.at("preprocessing.marginal.t").size()
                             : 0;
    std::vector<double> t = doubles("preprocessing.marginal.t", knots);
    std::vector<double> y = doubles("preprocessing.marginal.y", knots);
    try {
      out.preprocessing.marginal = MarginalMap(std::move(t), std::move(y));
    } catch (const Error& e) {
      throw Error(path, e.what());
    }
  }
  out.preprocessing.validate(path);
  out.data.box_size_mpch = number("data.box_size_mpch");
  out.data.redshift = number("data.redshift");
  if (f.doubles.count("data.delta_pk.k_hmpc") || f.doubles.count("data.delta_pk.pk")) {
    const size_t rows =
        f.doubles.count("data.delta_pk.pk") ? f.doubles.at("data.delta_pk.pk").size() : 0;
    out.data.delta_pk_k_hmpc = doubles("data.delta_pk.k_hmpc", rows);
    out.data.delta_pk = doubles("data.delta_pk.pk", rows);
  }
  if (f.numbers.count("data.y_min") || f.numbers.count("data.y_max")) {
    out.data.y_min = number("data.y_min");
    out.data.y_max = number("data.y_max");
  }
  check_training_data(path, out.data, spec);
  const std::vector<Param<float>*> params = out.flow->params();
  for (Param<float>* p : params) {
    auto it = f.floats.find("param." + p->name);
    if (it == f.floats.end()) throw Error(path, "checkpoint lacks parameter " + p->name);
    if (it->second.size() != p->size())
      throw Error(path, "parameter " + p->name + " has " + std::to_string(it->second.size()) +
                            " values, the architecture needs " + std::to_string(p->size()));
    require_finite(path, "parameter " + p->name, it->second);
    p->value = it->second;
  }
  for (ActNorm<float>* a : out.flow->actnorms()) {
    const std::string key = "actnorm." + a->name() + ".initialized";
    const double flag = number(key);
    if (flag != 0.0 && flag != 1.0) throw Error(path, key + " must be 0 or 1");
    a->initialized = flag == 1.0;
  }
  // The fixed mixings come from the file, not from the seed: a change to the random-number code
  // must not change a trained model.
  for (ChannelMixing<float>* m : out.flow->mixings()) {
    const std::string key = "mixing." + m->name();
    const size_t C = size_t(m->channels());
    if (m->kind() == MixingKind::lu) {
      const std::vector<double> perm = doubles(key + ".perm", C);
      for (size_t i = 0; i < C; ++i) {
        if (perm[i] != std::floor(perm[i]) || std::abs(perm[i]) > 1e9)
          throw Error(path, key + ".perm holds a non-integer");
        m->perm[i] = int(perm[i]);
      }
      m->sign = doubles(key + ".sign", C);
    } else {
      m->fixed = doubles(key + ".matrix", C * C);
    }
    check_mixing(path, *m, int(C));
  }
  if (f.numbers.count("adam.step")) {
    out.has_optimizer = true;
    const double step = number("adam.step");
    if (step < 0 || step != std::floor(step)) throw Error(path, "adam.step must be a count");
    out.adam_step = long(step);
    AdamOptions& o = out.adam_options;
    o.lr = number("adam.lr");
    o.beta1 = number("adam.beta1");
    o.beta2 = number("adam.beta2");
    o.eps = number("adam.eps");
    o.weight_decay = number("adam.weight_decay");
    o.warmup_steps = long(number("adam.warmup_steps"));
    o.total_steps = long(number("adam.total_steps"));
    o.min_lr_ratio = number("adam.min_lr_ratio");
    o.clip_grad_norm = number("adam.clip_grad_norm");
    for (Param<float>* p : params) {
      auto m = f.floats.find("adam.m." + p->name), v = f.floats.find("adam.v." + p->name);
      if (m == f.floats.end() || v == f.floats.end() || m->second.size() != p->size() ||
          v->second.size() != p->size())
        throw Error(path, "checkpoint's Adam state for " + p->name + " is missing or mis-sized");
      require_finite(path, "adam.m." + p->name, m->second);
      require_finite(path, "adam.v." + p->name, v->second);
      for (float x : v->second)
        if (x < 0) throw Error(path, "adam.v." + p->name + " holds a negative second moment");
      out.adam_m.push_back(m->second);
      out.adam_v.push_back(v->second);
    }
  }
  auto strip = [](const auto& from, auto& to) {
    for (const auto& [name, v] : from)
      if (name.compare(0, kExtra.size(), kExtra) == 0) to[name.substr(kExtra.size())] = v;
  };
  strip(f.floats, out.extras.floats);
  strip(f.doubles, out.extras.doubles);
  strip(f.texts, out.extras.texts);
  strip(f.numbers, out.extras.numbers);
  return out;
}

void FlowCheckpoint::restore(Adam<float>& adam) const {
  if (!has_optimizer) throw Error(path, "holds no optimizer state");
  if (adam.first_moments().size() != adam_m.size())
    throw Error(path, "optimizer parameter count differs from the checkpoint's");
  adam.first_moments() = adam_m;
  adam.second_moments() = adam_v;
  adam.set_steps_taken(adam_step);
}

void FlowCheckpoint::require_initialized() const {
  for (ActNorm<float>* a : flow->actnorms())
    if (!a->initialized)
      throw Error(path, "actnorm " + a->name() +
                            " is uninitialised: the checkpoint was saved before any training data "
                            "went through the flow");
}

}  // namespace ff
