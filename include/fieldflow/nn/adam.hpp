#pragma once
// Adam and AdamW (Kingma & Ba 2015; Loshchilov & Hutter 2019) with linear warm-up, cosine decay
// and global gradient-norm clipping, over a fixed list of parameters.
#include <cstdint>
#include <vector>

#include "fieldflow/nn/param.hpp"

namespace ff {

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;  // decoupled (AdamW) when > 0
  long warmup_steps = 0;      // linear ramp from lr/warmup to lr
  long total_steps = 0;       // cosine decay to min_lr_ratio*lr over total_steps; 0 = constant
  double min_lr_ratio = 0.0;
  double clip_grad_norm = 0.0;  // rescale gradients whose global L2 norm exceeds this; 0 = off
};

template <typename T>
class Adam {
 public:
  Adam(std::vector<Param<T>*> params, AdamOptions options);

  // Learning rate used by step number `step` (0-based).
  double learning_rate(long step) const;
  // One update from the gradients in params; returns the gradient norm before clipping.
  double step() { return step(gradient_norm()); }
  // The same with the global L2 norm of the gradients already known (the trainer has it from its
  // finiteness check), so it is not summed twice.
  double step(double gradient_norm);
  double gradient_norm() const;
  void zero_grad();

  long steps_taken() const { return step_; }
  const AdamOptions& options() const { return options_; }
  // Moments, one vector per parameter (for checkpoints).
  std::vector<std::vector<T>>& first_moments() { return m_; }
  std::vector<std::vector<T>>& second_moments() { return v_; }
  void set_steps_taken(long step) { step_ = step; }

 private:
  std::vector<Param<T>*> params_;
  AdamOptions options_;
  std::vector<std::vector<T>> m_, v_;
  long step_ = 0;
};

}  // namespace ff
