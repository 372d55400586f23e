#!/usr/bin/env python3
"""Per-k-bin table over test fields from `fieldflow denoise` outputs (OUT/test_I_metrics.csv and
OUT/test_I_summary.json): mean and scatter (standard deviation over fields) of r(k) for the WF,
the MAP and the combined estimate, the residual power ratios to the WF's, and the targets of
docs/denoise.md checked on the mean. When the runs sampled the posterior (denoise.posterior), also
the posterior mean's rows and the targets of docs/posterior.md: r(k) and residual power against the
WF per bin, R-hat, ESS and the calibration over the fields. Standard library only.

    run/denoise_table.py OUT COUNT        (fields 0..COUNT-1)
    run/denoise_table.py OUT I,J,K,...    (those fields only)
"""
import csv
import json
import math
import statistics
import sys

out, which = sys.argv[1], sys.argv[2]
indices = [int(i) for i in which.split(",") if i] if "," in which else list(range(int(which)))
count = len(indices)
fields = []
for i in indices:
    with open(f"{out}/test_{i}_metrics.csv") as f:
        fields.append(list(csv.DictReader(f)))
summaries = [json.load(open(f"{out}/test_{i}_summary.json")) for i in indices]
n, box = summaries[0]["n"], summaries[0]["box_size_mpch"]
kn = math.pi * n / box


def stat(values):
    m = statistics.fmean(values)
    s = statistics.stdev(values) if len(values) > 1 else 0.0
    return m, s


print(f"{count} test fields ({indices}), {n}^3 in {box:g} Mpc/h; k_N = {kn:.4f} h/Mpc; "
      f"k_split = {summaries[0]['combined']['k_split_hmpc']:.4f} h/Mpc "
      f"({summaries[0]['combined']['chosen_on']})\n")
print("| k [h/Mpc] | r WF | r MAP | r combined | combined - WF | P_res MAP/WF | P_res comb/WF | T WF | T MAP | T comb |")
print("|---|---|---|---|---|---|---|---|---|---|")
worst_below = 0.0
all_above = True
for b in range(len(fields[0])):
    k = float(fields[0][b]["k"])
    col = lambda name: [float(f[b][name]) for f in fields]
    rw, rm, rc = stat(col("wf_r")), stat(col("map_r")), stat(col("combined_r"))
    d = stat([c - w for c, w in zip(col("combined_r"), col("wf_r"))])
    pm = stat([m / w for m, w in zip(col("map_residual_pk"), col("wf_residual_pk"))])
    pc = stat([c / w for c, w in zip(col("combined_residual_pk"), col("wf_residual_pk"))])
    tw, tm, tc = stat(col("wf_transfer")), stat(col("map_transfer")), stat(col("combined_transfer"))
    worst_below = min(worst_below, d[0])
    if k > kn / 2 and d[0] <= 0:
        all_above = False
    print(f"| {k:.3f} | {rw[0]:.3f} ± {rw[1]:.3f} | {rm[0]:.3f} ± {rm[1]:.3f} | "
          f"{rc[0]:.3f} ± {rc[1]:.3f} | {d[0]:+.4f} ± {d[1]:.4f} | {pm[0]:.3f} ± {pm[1]:.3f} | "
          f"{pc[0]:.3f} ± {pc[1]:.3f} | {tw[0]:.3f} | {tm[0]:.3f} | {tc[0]:.3f} |")

band = [s["headline"] for s in summaries]
ratio = stat([h["combined_residual_vs_wf"] for h in band])
ratio_map = stat([h["map_residual_vs_wf"] for h in band])
print()
print(f"Residual power on k_N/2..k_N, combined / WF: {ratio[0]:.3f} ± {ratio[1]:.3f} "
      f"(target <= 0.75: {'met' if ratio[0] <= 0.75 else 'NOT met'}); plain MAP / WF: "
      f"{ratio_map[0]:.3f} ± {ratio_map[1]:.3f}")
print(f"Combined r above WF for every k > k_N/2: {'met' if all_above else 'NOT met'}; "
      f"largest deficit anywhere {worst_below:+.4f} (target >= -0.005: "
      f"{'met' if worst_below >= -0.005 else 'NOT met'})")
for name in ("wf", "map", "combined"):
    mse = [s["mse"][name] for s in summaries]
    print(f"voxel MSE {name}: all {stat([m['all'] for m in mse])[0]:.4f}, observed "
          f"{stat([m['observed'] for m in mse])[0]:.4f}, masked {stat([m['masked'] for m in mse])[0]:.4f}")
wf_it = stat([s["wiener"]["iterations"] for s in summaries])
wf_s = stat([s["wiener"]["seconds"] for s in summaries])
map_it = stat([s["map"]["iterations"] for s in summaries])
map_s = stat([s["map"]["seconds"] for s in summaries])
stops = sorted({s["map"]["stop"] for s in summaries})
print(f"WF: {wf_it[0]:.1f} PCG iterations, {wf_s[0]:.3f} s; MAP: {map_it[0]:.0f} ± {map_it[1]:.0f} "
      f"L-BFGS iterations, {map_s[0]:.1f} s; MAP stops: {', '.join(stops)}")

if all("posterior" in s for s in summaries):
    post = [s["posterior"] for s in summaries]
    print()
    print(f"Posterior ({post[0]['space']} space; per field {post[0]['chains']} chains x "
          f"({post[0]['warmup']} warm-up + {post[0]['samples_per_chain']} draws) x "
          f"{post[0]['leapfrog_steps']} leapfrog steps)\n")
    # MC noise: the posterior mean's Monte Carlo noise power (fieldflow's posterior_mean_mc_pk,
    # from the chains' own means) over the WF's residual power; absent with one chain.
    has_mc = "posterior_mean_mc_pk" in fields[0][0]
    print("| k [h/Mpc] | r post. mean | post. - WF | P_res post./WF | MC noise / WF res. | true P in central 95% | worst R-hat | smallest ESS |")
    print("|---|---|---|---|---|---|---|---|")
    every_bin_r = every_bin_res = every_bin_res_mc = True
    for b in range(len(fields[0])):
        k = float(fields[0][b]["k"])
        col = lambda name: [float(f[b][name]) for f in fields]
        rp = stat(col("posterior_mean_r"))
        d = stat([p - w for p, w in zip(col("posterior_mean_r"), col("wf_r"))])
        res = stat([p / w for p, w in zip(col("posterior_mean_residual_pk"), col("wf_residual_pk"))])
        inside = statistics.fmean(
            [1.0 if lo <= t <= hi else 0.0 for lo, t, hi in
             zip(col("posterior_pk_q025"), col("pk_truth"), col("posterior_pk_q975"))])
        every_bin_r = every_bin_r and d[0] >= 0
        every_bin_res = every_bin_res and res[0] < 1
        mc = statistics.fmean([m / w for m, w in zip(col("posterior_mean_mc_pk"), col("wf_residual_pk"))]) \
            if has_mc else float("nan")
        # Within MC error: the excess over the WF's residual is no larger than the MC noise.
        every_bin_res_mc = every_bin_res_mc and has_mc and res[0] - mc < 1
        print(f"| {k:.3f} | {rp[0]:.3f} ± {rp[1]:.3f} | {d[0]:+.4f} ± {d[1]:.4f} | "
              f"{res[0]:.3f} ± {res[1]:.3f} | {mc:.3f} | {inside:.3f} | {max(col('posterior_pk_rhat')):.3f} | "
              f"{min(col('posterior_pk_ess')):.1f} |")
    pr = stat([s["headline"]["posterior_mean_residual_vs_wf"] for s in summaries])
    print()
    print(f"Residual power on k_N/2..k_N, posterior mean / WF: {pr[0]:.3f} ± {pr[1]:.3f} "
          f"(target <= 0.70: {'met' if pr[0] <= 0.70 else 'NOT met'})")
    print(f"Posterior mean r at or above the WF's in every bin (on the mean): "
          f"{'met' if every_bin_r else 'NOT met'}; residual power below the WF's in every bin: "
          f"{'met' if every_bin_res else 'NOT met'}; within MC error (residual - MC noise below the WF's): "
          f"{('met' if every_bin_res_mc else 'NOT met') if has_mc else 'n/a (no posterior_mean_mc_pk column: one chain, or a build before 9f021eb)'}")
    for name, nominal in (("coverage68", 0.68), ("coverage95", 0.95)):
        c = stat([p[name] for p in post])
        print(f"per-voxel {name[8:]}% interval coverage: {c[0]:.3f} ± {c[1]:.3f} over fields, "
              f"{min(p[name] for p in post):.3f}..{max(p[name] for p in post):.3f} "
              f"(nominal {nominal}; target within 0.05: "
              f"{'met' if abs(c[0] - nominal) <= 0.05 else 'NOT met'})")
    inside = statistics.fmean([p["pk_in_central95"] for p in post])
    print(f"true P(k) inside the central 95%: {inside:.3f} of the k bins (target >= 0.9: "
          f"{'met' if inside >= 0.9 else 'NOT met'})")
    rhat = [p["pk_rhat_max"] for p in post if p["pk_rhat_max"] is not None] or [float("nan")]
    print(f"worst split R-hat of P(k) {max(rhat):.3f} (per field "
          f"{min(rhat):.3f}..{max(rhat):.3f}); "
          f"smallest ESS {min(p['pk_ess_min'] for p in post):.1f}; ESS of the highest k bin per "
          f"chain-second {stat([p['ess_per_chain_second_kmax'] for p in post])[0]:.4f}")
    acc = stat([p["acceptance_rate"] for p in post])
    steps = [x for p in post for x in p["step_sizes"]]
    print(f"acceptance {acc[0]:.3f}; step sizes {min(steps):.4f}..{max(steps):.4f}; divergences "
          f"{sum(p['divergences'] for p in post)} (warm-up {sum(p['warmup_divergences'] for p in post)}); "
          f"leapfrog step / target call {stat([p['leapfrog_step_over_target_call'] for p in post])[0]:.3f}; "
          f"sampling {stat([p['seconds'] for p in post])[0]:.0f} s per field")
