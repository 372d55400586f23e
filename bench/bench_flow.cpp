// The "bench-32" flow benchmark of ../shared/BENCH.md: training step (mean NLL, backward to all
// parameters, Adam) on a batch of 8 fields of 32^3, and log p with d log p / dx for one field:
// logp_grad_s with the parameter gradients too, logp_input_grad_s input-only (what the PyTorch
// peer's logp_grad_s, torch.autograd.grad with respect to the input, computes), and
// inverse_vjp_s, the inverse of one field from its latents plus the gradient back through it.
// Prints `name value` lines like the PyTorch peer (../shared/peers/torch_realnvp3d.py), plus the
// throughput of each 3^3 convolution shape of the network against this CPU's float32 peak.
//
//   build-flow/bench/bench_flow --threads 1 [--batch 8 --grid 32 --steps 20 --warmup 3]
//   build-flow/bench/bench_flow --convs-only --shape 32:16:2:3   # one conv shape (repeatable)
//   build-flow/bench/bench_flow --no-convs --global-context      # bench-32 with global_context
#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "fieldflow/core/rng.hpp"
#include "fieldflow/core/simd.hpp"
#include "fieldflow/flow/flow.hpp"
#include "fieldflow/nn/adam.hpp"
#include "timing.hpp"

using namespace ff;

namespace {

// Wall-clock seconds, or with --cpu-time the process CPU time (robust on a busy machine when
// running one thread; not what the comparison reports).
BenchClock bench_clock = BenchClock::wall;  // --cpu-time: CPU seconds

// The median of `steps` timed calls after `warmup` untimed ones, on the chosen clock.
double median_on_clock(const std::function<void()>& fn, int steps, int warmup) {
  return median_seconds(steps, fn, bench_clock, warmup);
}

void fill_normal(Tensor<float>& t, uint64_t seed) {
  const CounterRng rng(seed, 0);
  for (size_t i = 0; i < t.size(); ++i) t.data[i] = float(rng.normal(i));
}

// Nominal clock from /proc/cpuinfo (MHz), the frequency the peak figure assumes.
double cpu_ghz() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("cpu MHz", 0) == 0)
      return std::atof(line.substr(line.find(':') + 1).c_str()) / 1000;
  return 0.0;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, batch = 8, grid = 32, steps = 20, warmup = 3;
  bool convs = true, flow_timings = true, global_context = false;
  struct Shape {
    int n, in, out, k, count;  // count: how many such convs bench-32 has
  };
  std::vector<Shape> only_shapes;  // --shape: these instead of bench-32's
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() { return i + 1 < argc ? std::atoi(argv[++i]) : 0; };
    if (a == "--threads")
      threads = next();
    else if (a == "--batch")
      batch = next();
    else if (a == "--grid")
      grid = next();
    else if (a == "--steps")
      steps = next();
    else if (a == "--warmup")
      warmup = next();
    else if (a == "--no-convs")
      convs = false;
    else if (a == "--convs-only")
      flow_timings = false;
    else if (a == "--cpu-time")
      bench_clock = BenchClock::cpu;
    else if (a == "--global-context")
      global_context = true;
    else if (Shape s{}; a == "--shape" && i + 1 < argc &&
                        std::sscanf(argv[++i], "%d:%d:%d:%d", &s.n, &s.in, &s.out, &s.k) == 4 &&
                        s.n > 0 && s.in > 0 && s.out > 0 && (s.k == 1 || s.k == 3)) {
      s.count = 1;
      only_shapes.push_back(s);
    } else {
      std::fprintf(stderr,
                   "usage: bench_flow [--threads T] [--batch B] [--grid N] [--steps S] [--warmup "
                   "W] [--no-convs | --convs-only] [--cpu-time] [--global-context] [--shape "
                   "N:IN:OUT:K ...]\n");
      return 2;
    }
  }
  omp_set_num_threads(threads);
  std::printf("fieldflow threads %d batch %d grid %d simd_target %s simd_lanes_f32 %zu\n", threads,
              batch, grid, simd_target_name().c_str(), simd_lanes<float>());

  if (flow_timings) {
    FlowSpec spec = bench32_flow_spec();
    spec.grid = grid;
    spec.global_context = global_context;  // --global-context: flow.global_context's cost
    // Inversion check on a perturbed flow, as the peer does.
    {
      MultiScaleFlow<float> flow(spec);
      flow.perturb(1, 0.02);
      Tensor<float> x(batch, grid, 1), back;
      fill_normal(x, 2);
      std::vector<float> logdet;
      flow.forward(x, logdet);
      flow.inverse(flow.latents(), back);
      double err = 0;
      for (size_t i = 0; i < x.size(); ++i)
        err = std::max(err, double(std::abs(back.data[i] - x.data[i])));
      std::printf("check_inverse max_abs_err %.3e %s\n", err, err < 1e-4 ? "ok" : "FAIL");
      if (!(err < 1e-4)) return 1;
    }

    MultiScaleFlow<float> flow(spec);
    std::printf("params %zu\n", flow.parameter_count());
    AdamOptions opt;
    opt.lr = 1e-3;
    Adam<float> adam(flow.params(), opt);
    Tensor<float> x(batch, grid, 1);
    fill_normal(x, 3);
    double nll = 0;
    const double step_s = median_on_clock(
        [&] {
          adam.zero_grad();
          nll = flow.nll_backward(x);
          adam.step();
        },
        steps, warmup);
    std::printf("train_step_s %.4f\n", step_s);
    std::printf("train_fields_per_s %.1f\n", batch / step_s);
    std::printf("train_nll_bits_per_voxel %.4f\n", nll / (std::log(2.0) * grid * grid * grid));

    Tensor<float> field(1, grid, 1), dx;
    fill_normal(field, 4);
    const double grad_s = median_on_clock([&] { flow.log_prob_grad(field, dx); }, steps, warmup);
    std::printf("logp_grad_s %.4f\n", grad_s);
    const double input_grad_s =
        median_on_clock([&] { flow.log_prob_input_grad(field, dx); }, steps, warmup);
    std::printf("logp_input_grad_s %.4f\n", input_grad_s);
    Tensor<float> latents(1, grid, 1), back, du;
    fill_normal(latents, 7);
    const double vjp_s = median_on_clock(
        [&] {
          flow.inverse_from_grid(latents, back);
          flow.inverse_vjp(field, du);
        },
        steps, warmup);
    std::printf("inverse_vjp_s %.4f\n", vjp_s);
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    std::printf("peak_rss_mb %.1f\n", usage.ru_maxrss / 1024.0);
  }

  if (convs) {
    // The convolutions of bench-32 at their grid and batch, forward and backward, against the
    // float32 peak: measured (FMA chains in registers, the clock the cores actually run at), and
    // nominal (threads x /proc/cpuinfo clock x 32 FLOP/cycle: two 256-bit FMA pipes per core as
    // on Zen 3 and Zen 4; Zen 5 and AVX-512 server cores have 64, and a VM's reported clock is
    // often below the boost clock, so the measured peak is the one the benchmark compares with).
    const double nominal = threads * cpu_ghz() * 32.0;
    const double peak = simd_fma_peak_gflops(threads);  // on the dispatched target
    std::printf("peak_gflops_measured %.1f (FMA chains, %d thread(s))\n", peak, threads);
    std::printf("peak_gflops_nominal %.1f (%d x %.3f GHz x 32 FLOP/cycle)\n", nominal, threads,
                cpu_ghz());
    const std::vector<Shape> bench32_shapes = {
        {grid, 1, 16, 3, 2},      {grid, 16, 16, 1, 2},     {grid, 16, 2, 3, 2},
        {grid / 2, 4, 32, 3, 4},  {grid / 2, 32, 32, 1, 4}, {grid / 2, 32, 8, 3, 4},
        {grid / 4, 16, 64, 3, 6}, {grid / 4, 64, 64, 1, 6}, {grid / 4, 64, 32, 3, 6}};
    const std::vector<Shape>& shapes = only_shapes.empty() ? bench32_shapes : only_shapes;
    double total_flop = 0, total_s = 0, step_s_sum = 0, all_flop = 0, all_s = 0;
    for (const Shape& s : shapes) {
      Conv3d<float> conv(s.in, s.out, s.k, "c");
      conv.init_default(1, 1);
      Tensor<float> in(batch, s.n, s.in), out, dy(batch, s.n, s.out), din;
      fill_normal(in, 5);
      fill_normal(dy, 6);
      const double t = median_on_clock([&] { conv.forward(in, out); }, 10, 2);
      const double tb = median_on_clock([&] { conv.backward(in, dy, &din); }, 10, 2);
      const double tx = median_on_clock([&] { conv.backward_input(dy, din); }, 10, 2);
      const double flop = 2.0 * batch * s.n * s.n * s.n * s.k * s.k * s.k * s.in * s.out;
      if (s.k == 3) {
        total_flop += flop;
        total_s += t;
        all_flop += s.count * 3 * flop;  // forward + backward to weights and input
        all_s += s.count * (t + tb);
      }
      step_s_sum += s.count * (t + tb);
      std::printf(
          "conv%d n %2d %2d->%2d  fwd %7.2f GFLOP/s %5.1f%% of peak  bwd(w+x) %7.2f GFLOP/s  step "
          "share %.3f s  (bwd x %.2f, w+bias %.2f GFLOP/s)\n",
          s.k, s.n, s.in, s.out, flop / t / 1e9, 100 * flop / t / 1e9 / peak, 2 * flop / tb / 1e9,
          s.count * (t + tb), flop / tx / 1e9, flop / std::max(tb - tx, 1e-9) / 1e9);
    }
    std::printf("conv3_fwd_all %.2f GFLOP/s %.1f%% of peak\n", total_flop / total_s / 1e9,
                100 * total_flop / total_s / 1e9 / peak);
    std::printf("conv3_fwd_bwd_all %.2f GFLOP/s %.1f%% of peak (as in a training step)\n",
                all_flop / all_s / 1e9, 100 * all_flop / all_s / 1e9 / peak);
    std::printf("convs_in_train_step_s %.4f\n", step_s_sum);
  }
  return 0;
}
