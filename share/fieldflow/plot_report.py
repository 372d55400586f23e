#!/usr/bin/python3
"""Draws the figures of a fieldflow report folder (docs/report.md).

    /usr/bin/python3 plot_report.py REPORT_DIR

Reads REPORT_DIR/report.json and only the CSV and JSON files it names (all written by fieldflow's
C++ side) and writes one PNG per figure into REPORT_DIR. Needs Debian's python3-matplotlib.
"""
import csv
import json
import math
import os
import sys


def fail(message):
    print(f"plot_report.py: {message}", file=sys.stderr)
    sys.exit(1)


try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    import numpy as np
except ImportError as e:
    fail(f"cannot import {e.name}: install python3-matplotlib and python3-numpy")


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if len(rows) < 2:
        fail(f"{path}: no data rows")
    header = rows[0]
    columns = {name: [] for name in header}
    for row in rows[1:]:
        for name, value in zip(header, row):
            columns[name].append(float(value))
    return {k: np.array(v) for k, v in columns.items()}


def sparse_label(value, _):
    lead = value / 10 ** math.floor(math.log10(value) + 1e-9)
    return f"{value:g}" if any(abs(lead - d) < 1e-6 for d in (2, 5)) else ""


def draw_panels(folder, figure):
    panels = figure["panels"]
    heights = [p["height"] for p in panels]
    fig, axes = plt.subplots(len(panels), 1, sharex=True, figsize=(7.0, 1.5 + 1.3 * sum(heights)),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    tables = {}
    for ax, panel in zip(axes[:, 0], panels):
        for s in panel["series"]:
            if s["csv"] not in tables:
                tables[s["csv"]] = read_csv(os.path.join(folder, s["csv"]))
            t = tables[s["csv"]]
            x, y = t[s["x"]], t[s["y"]]
            keep = np.isfinite(x) & np.isfinite(y)
            if panel["ylog"]:
                keep &= y > 0
            if panel["xlog"]:
                keep &= x > 0
            kwargs = {"label": s["label"]}
            if s["color"]:
                kwargs["color"] = s["color"]
            if s["style"] == "band":  # an interval [y - band, y + band] alone, without its centre
                b = t[s["band"]][keep]
                ax.fill_between(x[keep], y[keep] - b, y[keep] + b, alpha=0.25, lw=0, **kwargs)
                continue
            (line,) = ax.plot(x[keep], y[keep], s["style"] or "-", lw=1.6, **kwargs)
            if s["band"]:
                b = t[s["band"]][keep]
                lo, hi = y[keep] - b, y[keep] + b
                if panel["ylog"]:
                    lo = np.maximum(lo, y[keep] * 0.1)  # a band through zero: cut at y/10
                ax.fill_between(x[keep], lo, hi, color=line.get_color(), alpha=0.22, lw=0)
        for h in panel["hlines"]:
            ax.axhline(h["value"], color="0.35", ls=":", lw=1.2, label=h["label"] or None)
        for i, v in enumerate(panel["vlines"]):
            ax.axvline(v["value"], color=("0.45", "0.65")[i % 2], ls=("--", "-.")[i % 2], lw=1.0,
                       label=v["label"] or None)
        if panel["xlog"]:
            ax.set_xscale("log")
            # Plain numbers (0.2, 0.3) rather than 2x10^-1 on the k axis.
            plain = matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}")
            ax.xaxis.set_major_formatter(plain)
            lo, hi = ax.get_xlim()
            # Over more than a decade, minor labels only at 2 and 5 (else they collide).
            ax.xaxis.set_minor_formatter(plain if hi < 10 * lo else
                                         matplotlib.ticker.FuncFormatter(sparse_label))
        if panel["ylog"]:
            ax.set_yscale("log")
        ax.set_ylabel(panel["ylabel"])
        ax.grid(True, which="major", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, frameon=False)
    axes[-1, 0].set_xlabel(panels[-1]["xlabel"])
    axes[0, 0].set_title(figure["title"], fontsize=11)
    fig.tight_layout()
    return fig


def draw_images(folder, figure):
    with open(os.path.join(folder, figure["images"])) as f:
        spec = json.load(f)
    images = spec["images"]
    columns = max(1, spec["columns"])
    rows = math.ceil(len(images) / columns)
    scales = {s["name"]: s for s in spec["scales"]}
    fig, axes = plt.subplots(rows, columns, figsize=(2.4 * columns + 1.4, 2.4 * rows + 0.5),
                             squeeze=False, constrained_layout=True)
    box = spec["box_size_mpch"]
    drawn = {}
    for ax in axes.flat:
        ax.set_visible(False)
    for index, (ax, image) in enumerate(zip(axes.flat, images)):
        ax.set_visible(True)
        values = np.array(image["values"], dtype=float)  # null (masked) -> nan
        scale = scales[image["scale"]]
        cmap = plt.get_cmap(scale["cmap"]).copy()
        cmap.set_bad("0.6")
        im = ax.imshow(values.T, origin="lower", extent=(0, box, 0, box), cmap=cmap,
                       vmin=scale["vmin"], vmax=scale["vmax"], interpolation="nearest")
        drawn.setdefault(image["scale"], (im, set()))[1].add(index // columns)
        ax.set_title(image["title"], fontsize=9)
        ax.set_xlabel("y [Mpc/h]", fontsize=8)
        if index % columns == 0:  # one y label per row: neighbours would overlap
            ax.set_ylabel("z [Mpc/h]", fontsize=8)
        else:
            ax.set_yticklabels([])
        ax.tick_params(labelsize=7)
    for name, (im, rows_of_scale) in drawn.items():
        # Whole rows, hidden panels included: the bar sits at the right edge of the figure.
        axs = [a for r in sorted(rows_of_scale) for a in axes[r, :]]
        fig.colorbar(im, ax=axs, shrink=0.9, label=scales[name]["label"])
    fig.suptitle(figure["title"], fontsize=11)
    return fig


def main():
    if len(sys.argv) != 2:
        fail("usage: plot_report.py REPORT_DIR")
    folder = sys.argv[1]
    manifest_path = os.path.join(folder, "report.json")
    if not os.path.isfile(manifest_path):
        fail(f"{manifest_path}: not found (is {folder} a fieldflow report folder?)")
    with open(manifest_path) as f:
        manifest = json.load(f)
    for figure in manifest["figures"]:
        fig = draw_images(folder, figure) if figure["images"] else draw_panels(folder, figure)
        out = os.path.join(folder, figure["png"])
        tmp = out + ".tmp.png"
        fig.savefig(tmp, dpi=110)
        plt.close(fig)
        os.replace(tmp, out)  # no half-written PNG under the final name
        print(f"plot_report.py: drew {figure['png']}")


if __name__ == "__main__":
    main()
