"""Plot the hypergradient estimator study that ``python -m dada.search.hypergradients`` measured (issue 22).

    python -m analysis.hypergradients --csv runs/smoke/estimator-hypergradient/seed0/hypergradients.csv --out results/

writes ``estimator_hypergradient_<scale>.{csv,png,pdf}``: per search state and parameter, each estimator's
per-coordinate variance, its signal-to-noise |mean| / sd, and its mean's distance from the average of its
search's unbiased estimators beside the noise floor. The paper-variant rows come from their own search (its own
ζ and c_phi), so they sit at other network and policy states than the official rows.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from analysis.style import STYLE, color, save_figure, use_file_backend
from dada.search.hypergradients import PARAMETERS, RESOLVED

SERIES = (
    ("official", "gumbel", "Gumbel-Softmax, official search (straight-through, biased)", color("gumbel")),
    ("official", "relax", r"RELAX, official search (difference of estimates: $c_\phi$ cancels)", color("relax")),
    ("official", "reinforce", "REINFORCE, official search (baseline cancels)", "tab:blue"),
    ("paper", "relax", r"RELAX, paper search (own $\zeta$ and $c_\phi$)", "yellowgreen"),
    ("paper", "reinforce", "REINFORCE, paper search (moving baseline)", "lightsteelblue"),
)
SYMBOLS = {"alpha": r"$\alpha$", "probability": r"$\beta$"}
PANELS = (
    ("variance", "variance of one estimate (mean over coordinates)", "per-coordinate variance"),
    ("snr_median", "|mean| / sd per coordinate (median; dot: max)", "signal-to-noise"),
    ("mean_ratio", "L2 norm of the mean / its noise floor sqrt(D var / N)", "size of the mean over pure noise"),
    ("distance", "L2 distance of the mean (+-1 bootstrap SE)", "distance from the search's unbiased mean"),
)


def _bars(axis, frame: pd.DataFrame, column: str, slots: list, series: list) -> None:
    width = 0.8 / len(series)
    for offset, (search, estimator, label, colour) in enumerate(series):
        rows = frame[(frame["search"] == search) & (frame["estimator"] == estimator)]
        selected = rows.set_index(["state", "parameter"]).loc[slots]
        x = [slot + (offset - (len(series) - 1) / 2) * width for slot in range(len(slots))]
        error = selected["distance_se"] if column == "distance" else None
        axis.bar(x, selected[column], width=width, color=colour, label=label, yerr=error, capsize=2)
        marker = {"snr_median": ("snr_max", "."), "distance": ("noise_floor", "_")}.get(column)
        if marker:
            axis.scatter(x, selected[marker[0]], marker=marker[1], s=120, color="black", zorder=3)


def _label_states(axis, states: dict) -> None:
    axis.set_xticks(range(2 * len(states)), [SYMBOLS[parameter] for _ in states for parameter in PARAMETERS])
    for group, (state, epoch) in enumerate(states.items()):
        axis.text(
            2 * group + 0.5,
            -0.1,
            f"{state} (epoch {epoch})",
            transform=axis.get_xaxis_transform(),
            ha="center",
            va="top",
        )
        if group:
            axis.axvline(2 * group - 0.5, color="gray", lw=0.6)


def plot(frame: pd.DataFrame):
    """Four panels over (state, parameter): variance, SNR, the mean over its noise floor and the distance."""
    import matplotlib.pyplot as plt

    frame = frame.assign(mean_ratio=frame["mean_norm"] / frame["mean_noise_floor"])
    states = dict(zip(frame["state"], frame["epoch"]))
    slots = [(state, parameter) for state in states for parameter in PARAMETERS]
    present = set(zip(frame["search"], frame["estimator"]))
    series = [entry for entry in SERIES if entry[:2] in present]
    first = frame.iloc[0]
    resolved = int(frame["bias_resolved"].sum())
    with plt.rc_context(STYLE):
        figure, axes = plt.subplots(2, 2, figsize=(15, 9))
        axes = axes.ravel()
        for axis, (column, ylabel, title) in zip(axes, PANELS):
            _bars(axis, frame, column, slots, series)
            axis.set_yscale("linear" if column == "mean_ratio" else "log")
            axis.set_ylabel(ylabel)
            axis.set_title(title)
            _label_states(axis, states)
        axes[2].axhline(RESOLVED, color="black", lw=0.8, ls="--")
        axes[2].set_title(f"size of the mean over pure noise (1); resolved above {RESOLVED:g} (dashed)")
        axes[3].set_title(
            f"distance from the search's unbiased mean; bar: noise floor\n"
            f"{resolved} of {len(frame)} rows exceed {RESOLVED:g}x their floor; no bias claimed below it"
        )
        handles, labels = axes[0].get_legend_handles_labels()
        figure.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, bbox_to_anchor=(0.5, -0.06))
        figure.suptitle(
            f"Hypergradient estimators at fixed search states: {first['scale']} scale (REDUCED, not the paper's "
            f"sizes), {first['model']} on {first['dataset']}, CPU, one fixed batch of {first['batch_size']}, "
            f"N = {first['draws']} paired draws, searches of {first['epochs']} epochs\n"
            r"$\alpha$'s score is $\times$1 here, $\times$210 in the official code (FIDELITY.md row 24): "
            r"the official search's score-based variances on $\alpha$ would be 210$^2\times$ these (vs Gumbel), "
            "their SNR the same",
            fontsize=10,
        )
        figure.tight_layout()
    return figure


def write(frame: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """``estimator_hypergradient_<scale>.csv``, ``.png`` and ``.pdf`` under ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = f"estimator_hypergradient_{frame['scale'].iloc[0]}"
    csv = out_dir / f"{name}.csv"
    frame.to_csv(csv, index=False, float_format="%.6g")
    return [csv, *save_figure(plot(frame), out_dir, name)]


def main(argv: list[str] | None = None) -> None:
    use_file_backend()
    parser = argparse.ArgumentParser(prog="python -m analysis.hypergradients", description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, required=True, help="the CSV of python -m dada.search.hypergradients")
    parser.add_argument("--out", type=Path, default=Path("results"), help="where the CSV and figure go")
    args = parser.parse_args(argv)
    for path in write(pd.read_csv(args.csv), args.out):
        print(path)


if __name__ == "__main__":
    main()
