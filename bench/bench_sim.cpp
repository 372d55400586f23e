// Benchmark of the particle-mesh simulator (docs/BENCHMARKS.md, section "Simulation").
//   bench_sim [--particles 64] [--mesh-factor 2] [--steps 20] [--repeat 20]
//             [--full-set CONFIG [--mpi RANKS]]
// 1. One PM step (force: paint, FFTs, Green's function, gradient, read-out; plus kick and drift)
//    against the bare FFTs that step needs on the force mesh (fd4: 1 forward + 1 inverse;
//    spectral: 1 + 3), both timed here in the same run on the same RealFft3d plans.
// 2. One whole default simulation (ICs, all steps, painting the output), as fieldflow simulate
//    makes it, without the file writing.
// 3. With --full-set CONFIG: times `fieldflow simulate CONFIG` (the default training set) end to
// end
//    in a fresh output folder.
#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "fieldflow/sim/cosmology.hpp"
#include "fieldflow/sim/initial_conditions.hpp"
#include "fieldflow/sim/linear_power.hpp"
#include "fieldflow/sim/particle_mesh.hpp"
#include "fieldflow/stats/paint.hpp"

namespace {
double now() {
  return omp_get_wtime();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}
}  // namespace

int main(int argc, char** argv) {
  int np = 64, mesh_factor = 2, steps = 20, repeat = 20;
  std::string full_set;
  int mpi_ranks = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--particles")
      np = std::atoi(next().c_str());
    else if (a == "--mesh-factor")
      mesh_factor = std::atoi(next().c_str());
    else if (a == "--steps")
      steps = std::atoi(next().c_str());
    else if (a == "--repeat")
      repeat = std::atoi(next().c_str());
    else if (a == "--full-set")
      full_set = next();
    else if (a == "--mpi")
      mpi_ranks = std::atoi(next().c_str());
    else {
      std::fprintf(stderr,
                   "usage: bench_sim [--particles N] [--mesh-factor B] [--steps S] "
                   "[--repeat R] [--full-set CONFIG [--mpi RANKS]]\n");
      return 2;
    }
  }
  const double box = 2.0 * np;  // the default 2 Mpc/h per particle
  const int n_mesh = np * mesh_factor;
  const ff::CosmologyParams params;
  const ff::Cosmology cosmo(params);
  const ff::LinearPower power(params, ff::TransferKind::eh98);
  std::printf(
      "bench_sim: %d^3 particles, %.0f Mpc/h box, force mesh %d^3 (float), %d OpenMP threads\n", np,
      box, n_mesh, omp_get_max_threads());

  // A realistic late-time particle distribution to time the force on: z = 0 after a short run.
  ff::Particles parts = ff::lpt_initial_conditions(cosmo, power, np, box, 1, 0.05);
  {
    ff::PmOptions opt;
    opt.steps = 5;
    ff::evolve(cosmo, parts, {1.0}, opt, [](int, const ff::Particles&) {});
  }
  std::vector<std::array<double, 3>> acc(parts.size());

  std::printf("\n%-9s %12s %12s %12s %12s %12s %12s %8s\n", "gradient", "step_ms", "paint_ms",
              "fft_ms", "kernel_ms", "readout_ms", "bare_ffts_ms", "ratio");
  for (auto grad : {ff::GradientKind::fd4, ff::GradientKind::spectral}) {
    ff::ParticleMesh pm(n_mesh, box, grad);
    pm.accelerations(parts.position_mpch, acc);  // warm-up
    pm.reset_timing();
    std::vector<double> step_s, fft_s;
    const long count = long(parts.size());
    for (int r = 0; r < repeat; ++r) {
      // A full KDK step as evolve() does it: force, kick, drift (factors irrelevant to time).
      double t0 = now();
      pm.accelerations(parts.position_mpch, acc);
      auto& p = parts.momentum;
#pragma omp parallel for schedule(static)
      for (long i = 0; i < count; ++i)
        for (int d = 0; d < 3; ++d) p[i][d] += 1e-12 * acc[i][d];
      auto& x = parts.position_mpch;
#pragma omp parallel for schedule(static)
      for (long i = 0; i < count; ++i)
        for (int d = 0; d < 3; ++d) {
          double v = x[i][d] + 1e-12 * p[i][d];
          x[i][d] = v >= box ? v - box : v;
        }
      step_s.push_back(now() - t0);
      // The bare transforms the step needs, on the same plans and buffers.
      t0 = now();
      pm.fft().forward();
      for (int k = 1; k < pm.ffts_per_force(); ++k) pm.fft().inverse();
      pm.fft().inverse();
      fft_s.push_back(now() - t0);
    }
    // The bare loop ran one more inverse than the step needs, to keep c2r's input valid; correct.
    const double per_fft = median(fft_s) / (pm.ffts_per_force() + 1);
    const double bare = per_fft * pm.ffts_per_force();
    const auto& t = pm.timing();
    const double c = 1e3 / double(t.calls);
    std::printf("%-9s %12.2f %12.2f %12.2f %12.2f %12.2f %12.2f %8.2f\n", ff::to_string(grad),
                median(step_s) * 1e3, t.paint * c, t.fft * c, t.kernel * c, t.readout * c,
                bare * 1e3, median(step_s) / bare);
  }
  std::printf("(ratio = one PM step / the bare FFTs it needs; target <= 3)\n");

  // 2. One whole simulation with the defaults.
  {
    const double t0 = now();
    ff::Particles p = ff::lpt_initial_conditions(cosmo, power, np, box, 2, 0.05);
    const double t_ic = now() - t0;
    ff::PmOptions opt;
    opt.steps = steps;
    opt.mesh_factor = mesh_factor;
    ff::ForceTiming timing;
    const double t1 = now();
    ff::Grid delta;
    ff::evolve(
        cosmo, p, {1.0}, opt,
        [&](int, const ff::Particles& q) {
          ff::Painter painter(np / 2, box, ff::MassAssignment::cic);
          painter.add(q.position_mpch);
          delta = painter.delta();
        },
        &timing);
    const double t_ev = now() - t1;
    std::printf(
        "\none simulation: 2LPT ICs %.2f s, %d steps + output paint %.2f s (force %.2f s, "
        "of which FFT %.2f s), total %.2f s\n",
        t_ic, steps, t_ev, timing.total(), timing.fft, t_ic + t_ev);
  }

  // 3. The default training set end to end.
  if (!full_set.empty()) {
    const auto out = std::filesystem::temp_directory_path() / "fieldflow_bench_sim";
    std::filesystem::remove_all(out);
    const std::string launcher = mpi_ranks > 0 ? "mpirun -np " + std::to_string(mpi_ranks) +
                                                     " --oversubscribe --allow-run-as-root "
                                               : "";
    const std::string cmd = launcher + std::string(FIELDFLOW_BINARY) + " simulate " + full_set +
                            " --set output_dir=" + out.string() + " --set sets.test.count=0";
    std::printf("\n$ %s\n", cmd.c_str());
    std::fflush(stdout);
    const auto t0 = std::chrono::steady_clock::now();
    const int rc = std::system(cmd.c_str());
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // CPU time of the child: what the run costs whatever else the machine is doing.
    rusage usage{};
    getrusage(RUSAGE_CHILDREN, &usage);
    const double cpu = double(usage.ru_utime.tv_sec) + 1e-6 * double(usage.ru_utime.tv_usec) +
                       double(usage.ru_stime.tv_sec) + 1e-6 * double(usage.ru_stime.tv_usec);
    std::printf("training set: exit %d, %.1f s wall (%.1f min), %.1f s CPU (user + system)\n", rc,
                s, s / 60, cpu);
    std::filesystem::remove_all(out);
    if (rc != 0) return 1;
  }
  return 0;
}
