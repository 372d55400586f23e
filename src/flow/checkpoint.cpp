// The flow checkpoint schema over io array files. See include/fieldflow/flow/checkpoint.hpp.
#include "fieldflow/flow/checkpoint.hpp"

#include <cmath>

#include "fieldflow/core/config.hpp"
#include "fieldflow/core/error.hpp"
#include "fieldflow/io/checkpoint.hpp"

namespace ff {

namespace {
const char* kFormat = "fieldflow-flow-checkpoint";
}

template <typename T>
double Preprocessing::apply(T* values, size_t count) const {
  double log_jacobian = -double(count) * std::log(std);
  for (size_t i = 0; i < count; ++i) {
    double x = values[i];
    if (transform == "log1p") {
      if (!(x > -1))
        throw Error("preprocessing", "log1p needs values > -1, got " + std::to_string(x));
      log_jacobian -= std::log1p(x);
      x = std::log1p(x);
    }
    values[i] = T((x - mean) / std);
  }
  return log_jacobian;
}

template <typename T>
void Preprocessing::invert(T* values, size_t count) const {
  for (size_t i = 0; i < count; ++i) {
    double y = double(values[i]) * std + mean;
    if (transform == "log1p") y = std::expm1(y);
    values[i] = T(y);
  }
}

template double Preprocessing::apply(float*, size_t) const;
template double Preprocessing::apply(double*, size_t) const;
template void Preprocessing::invert(float*, size_t) const;
template void Preprocessing::invert(double*, size_t) const;

Preprocessing read_preprocessing(ConfigNode node) {
  Preprocessing p;
  p.transform = node.choice("transform", {"identity", "log1p"}, "identity");
  p.mean = node.number("mean", 0.0);
  p.std = node.positive("std", 1.0);
  return p;
}

void save_flow_checkpoint(const std::string& path, MultiScaleFlow<float>& flow,
                          const Preprocessing& preprocessing, Adam<float>* adam) {
  ArrayFile f;
  f.format = kFormat;
  f.version = kFlowCheckpointVersion;
  f.texts["architecture"] = flow_spec_yaml(flow.spec());
  f.texts["preprocessing.transform"] = preprocessing.transform;
  f.numbers["preprocessing.mean"] = preprocessing.mean;
  f.numbers["preprocessing.std"] = preprocessing.std;
  const std::vector<Param<float>*> params = flow.params();
  for (Param<float>* p : params) f.floats["param." + p->name] = p->value;
  for (ActNorm<float>* a : flow.actnorms())
    f.numbers["actnorm." + a->name() + ".initialized"] = a->initialized ? 1.0 : 0.0;
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
  write_array_file(path, f);
}

FlowCheckpoint load_flow_checkpoint(const std::string& path) {
  const ArrayFile f = read_array_file(path, kFormat, kFlowCheckpointVersion);
  auto text = [&](const std::string& key) {
    auto it = f.texts.find(key);
    if (it == f.texts.end()) throw Error(path, "checkpoint has no " + key);
    return it->second;
  };
  auto number = [&](const std::string& key) {
    auto it = f.numbers.find(key);
    if (it == f.numbers.end()) throw Error(path, "checkpoint has no " + key);
    return it->second;
  };
  FlowCheckpoint out;
  Config arch = Config::parse(text("architecture"), path + ":architecture");
  FlowSpec spec = read_flow_spec(arch.root().section("flow"));
  arch.finish();
  out.flow = std::make_unique<MultiScaleFlow<float>>(spec);
  out.preprocessing.transform = text("preprocessing.transform");
  out.preprocessing.mean = number("preprocessing.mean");
  out.preprocessing.std = number("preprocessing.std");
  const std::vector<Param<float>*> params = out.flow->params();
  for (Param<float>* p : params) {
    auto it = f.floats.find("param." + p->name);
    if (it == f.floats.end()) throw Error(path, "checkpoint lacks parameter " + p->name);
    if (it->second.size() != p->size())
      throw Error(path, "parameter " + p->name + " has " + std::to_string(it->second.size()) +
                            " values, the architecture needs " + std::to_string(p->size()));
    p->value = it->second;
  }
  for (ActNorm<float>* a : out.flow->actnorms())
    a->initialized = number("actnorm." + a->name() + ".initialized") != 0.0;
  if (f.numbers.count("adam.step")) {
    out.has_optimizer = true;
    out.adam_step = long(number("adam.step"));
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
      out.adam_m.push_back(m->second);
      out.adam_v.push_back(v->second);
    }
  }
  return out;
}

void FlowCheckpoint::restore(Adam<float>& adam) const {
  if (!has_optimizer) throw Error("checkpoint", "holds no optimizer state");
  if (adam.first_moments().size() != adam_m.size())
    throw Error("checkpoint", "optimizer parameter count differs from the checkpoint's");
  adam.first_moments() = adam_m;
  adam.second_moments() = adam_v;
  adam.set_steps_taken(adam_step);
}

}  // namespace ff
