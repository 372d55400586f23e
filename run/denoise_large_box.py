#!/usr/bin/env python3
"""large_box: whole against tiles (docs/denoise.md "Boxes larger than the training grid"), per k bin
over fields: r(k) of the MAP and of the combined estimate for each, and their residual power
against the WF's; then the means on k_N/2..k_N and the voxel MSE. Reads the outputs of
`fieldflow denoise` runs named OUT/SET_whole_I_* and OUT/SET_tiles_I_* (I = 0..COUNT-1). Mean and
standard deviation over the fields. Standard library only.

    run/denoise_large_box.py OUT SET COUNT
"""
import csv
import json
import math
import statistics
import sys

out, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
modes = ("whole", "tiles")
rows = {m: [list(csv.DictReader(open(f"{out}/{name}_{m}_{i}_metrics.csv"))) for i in range(count)]
        for m in modes}
summary = {m: [json.load(open(f"{out}/{name}_{m}_{i}_summary.json")) for i in range(count)]
           for m in modes}
n, box = summary["whole"][0]["n"], summary["whole"][0]["box_size_mpch"]
kn = math.pi * n / box


def stat(values):
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def fmt(s, digits=3):
    return f"{s[0]:.{digits}f} ± {s[1]:.{digits}f}"


def band(table, column, lo, hi):
    """Mode-weighted mean of a column over the bins with lo <= k <= hi."""
    pairs = [(float(r[column]), float(r["nmodes"])) for r in table if lo <= float(r["k"]) <= hi]
    return sum(v * w for v, w in pairs) / sum(w for _, w in pairs)


print(f"{count} fields ({name}), {n}^3 in {box:g} Mpc/h; k_N = {kn:.4f} h/Mpc; k_split = "
      f"{summary['whole'][0]['combined']['k_split_hmpc']:.4f} h/Mpc; tiles: "
      f"{summary['tiles'][0]['map']['tiles']}\n")
print("| k [h/Mpc] | r WF | r MAP whole | r MAP tiles | r comb whole | r comb tiles "
      "| P_res MAP whole/WF | P_res MAP tiles/WF |")
print("|---|---|---|---|---|---|---|---|")
for b in range(len(rows["whole"][0])):
    col = lambda m, c: [float(f[b][c]) for f in rows[m]]
    ratio = lambda m: [x / w for x, w in zip(col(m, "map_residual_pk"), col(m, "wf_residual_pk"))]
    print(f"| {float(rows['whole'][0][b]['k']):.3f} | {fmt(stat(col('whole', 'wf_r')))} "
          f"| {fmt(stat(col('whole', 'map_r')))} | {fmt(stat(col('tiles', 'map_r')))} "
          f"| {fmt(stat(col('whole', 'combined_r')))} | {fmt(stat(col('tiles', 'combined_r')))} "
          f"| {fmt(stat(ratio('whole')))} | {fmt(stat(ratio('tiles')))} |")
print()
for lo, hi, what in ((0.0, kn / 2, "k < k_N/2"), (kn / 2, kn, "k_N/2..k_N")):
    for m in modes:
        r_map = stat([band(f, "map_r", lo, hi) for f in rows[m]])
        r_comb = stat([band(f, "combined_r", lo, hi) for f in rows[m]])
        res = {e: stat([band(f, f"{e}_residual_pk", lo, hi) / band(f, "wf_residual_pk", lo, hi)
                        for f in rows[m]]) for e in ("map", "combined")}
        print(f"{what}, {m}: r MAP {fmt(r_map)}, r combined {fmt(r_comb)}; residual power / WF's: "
              f"MAP {fmt(res['map'])}, combined {fmt(res['combined'])}")
for m in modes:
    mse = {e: stat([s["mse"][e]["all"] for s in summary[m]]) for e in ("wf", "map", "combined")}
    seconds = stat([s["map"]["seconds"] for s in summary[m]])
    stops = sorted({s["map"]["stop"] for s in summary[m]})
    print(f"voxel MSE, {m}: WF {fmt(mse['wf'])}, MAP {fmt(mse['map'])}, "
          f"combined {fmt(mse['combined'])}; MAP {seconds[0]:.0f} s, stop {', '.join(stops)}")
