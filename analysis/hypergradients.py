"""Variance and bias of the search's hypergradient estimators at fixed search states (issue 11, item 8).

    python -m analysis.hypergradients --scale smoke --out results/   # estimator_hypergradient_smoke.{csv,png,pdf}

A seeded search (estimator relax, variant official) is advanced with relax-official and stopped before any
step, after a quarter of its epochs (at least one) and after all of them. At each state one training batch
(crop and flip drawn once) and one validation batch are fixed, and ``BiLevelOptimizer.hypergradient`` is drawn
N times with each estimator on the same network and policy, nothing updated in between:

- ``gumbel``: straight-through Gumbel-Softmax, variant official (biased).
- ``relax-official``: RELAX, variant official: the difference of two estimates, so c_phi cancels.
- ``relax-paper``: the same but ``difference_of_estimates=False``: one RELAX estimate of the finite difference.
- ``reinforce``: variant official, which takes the difference of two score-function estimates on the same
  sample, so any baseline cancels: the baseline is in effect zero.

Both RELAX rows use the state's trained c_phi (a copy of the search's estimator). Draw i of every estimator
uses the same seed, hence the same sub-policy and gates (paired draws); the Cutout of the training batch is
the same in every draw, so the only noise is the estimator's. relax-official and reinforce compute the same
score-function form ``(L+ - L-)/(2 eps) grad log p``, so their draws coincide.

Per estimator, state and parameter (alpha, probability): the per-coordinate variance of one estimate averaged
over coordinates, and the L2 distance of its mean from the average of the unbiased estimators' means
(relax-official, relax-paper, reinforce), with a paired bootstrap standard error and the noise floor
``sqrt(trace Cov(d) / N)`` (the expected distance if the means were equal; d = draw minus reference draw).
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

import pandas as pd
import torch
from omegaconf import DictConfig

from analysis.style import STYLE, color, save_figure, use_file_backend
from dada import estimators
from dada.config import compose_app_config
from dada.data.search_set import SearchData, prepare_search_data
from dada.run import NullTracker
from dada.scale import scale_name
from dada.search.augment import SearchInputs
from dada.search.bilevel import BiLevelOptimizer
from dada.search.loop import SearchRun
from dada.search.variant import VARIANTS

ESTIMATORS = ("gumbel", "relax-official", "relax-paper", "reinforce")
UNBIASED = ("relax-official", "relax-paper", "reinforce")
PARAMETERS = ("alpha", "probability")
LABELS = {
    "gumbel": "Gumbel-Softmax (straight-through, biased)",
    "relax-official": r"RELAX official (difference of estimates: $c_\phi$ cancels)",
    "relax-paper": r"RELAX paper (one estimate of the difference: $c_\phi$ active)",
    "reinforce": "REINFORCE (official: baseline cancels)",
}
BOOTSTRAP = 200


def search_config(scale: str, batch_size: int, seed: int, run_dir: Path, overrides: list[str] = ()) -> DictConfig:
    """The search app's config: ``scale``, estimator relax, variant official, CPU, with ``overrides`` last."""
    return compose_app_config(
        "search",
        [
            f"scale={scale}",
            "estimator=relax",
            "search.variant=official",
            "device=cpu",
            "logger=jsonl",
            f"scale.batch_size={batch_size}",
            f"seed={seed}",
            f"run_dir={run_dir}",
            *overrides,
        ],
    )


def _optimizers(run: SearchRun, inputs: SearchInputs) -> dict[str, BiLevelOptimizer]:
    """One BiLevelOptimizer per estimator over the run's network, policy and optimiser states."""
    space, recipe, temperature = run.space, run.cfg.search, run.cfg.estimator.temperature
    official = VARIANTS["official"]
    variants = {
        "gumbel": official,
        "relax-official": official,
        "reinforce": official,
        "relax-paper": dataclasses.replace(official, difference_of_estimates=False),
    }
    optimizers = {}
    for key, variant in variants.items():
        name = key.split("-")[0]
        options = run.estimator_options() if name == "relax" else {}
        estimator = estimators.create(
            name,
            space.num_sub_policies,
            space.probability.numel(),
            temperature,
            boundary="freeze",
            **{k: v for k, v in options.items() if k != "temperature"},
        )
        if name == "relax":
            estimator.load_state_dict(run.estimator.state_dict())  # the state's trained c_phi
        optimizers[key] = BiLevelOptimizer(
            run.model,
            space,
            estimator,
            run.optimizer.network_optimizer,
            run.optimizer.policy_optimizer,
            recipe.grad_clip,
            inputs,
            recipe.fd_epsilon,
            variant,
            recipe.mode,
            recipe.sampling,
        )
    return optimizers


def _fixed_batches(run: SearchRun, split: SearchData, seed: int):
    """One training batch (crop and flip drawn once) and one validation batch; the run's generator is restored."""
    saved = run.generator.get_state()
    run.generator.manual_seed(seed)
    train_index = torch.randperm(len(split.train_labels), generator=run.generator)[: run.batch_size]
    val_index = torch.randperm(len(split.val_labels), generator=run.generator)[: run.batch_size]
    batches = run.train_batch(split, train_index), run.val_batch(split, val_index)
    run.generator.set_state(saved)
    return batches


def draw_estimates(run: SearchRun, split: SearchData, draws: int, seed: int) -> dict[str, dict[str, torch.Tensor]]:
    """``{estimator: {parameter: [draws, D]}}`` at the run's current state; the state is left as it was."""
    inputs_generator = torch.Generator(run.device)
    inputs = SearchInputs(
        run.space,
        run.inputs.mean,
        run.inputs.std,
        run.inputs.cutout,
        inputs_generator,
        official=VARIANTS["official"].on_network_input,
        after_ops=run.inputs.after_ops,
    )
    train_batch, val_batch = _fixed_batches(run, split, seed)
    policy = {name: value.detach().clone() for name, value in run.space.state_dict().items()}
    buffers = {name: value.clone() for name, value in run.model.named_buffers()}
    weights = [weight.detach().clone() for weight in run.model.parameters()]
    estimator_generator = torch.Generator(run.device)
    out = {}
    for key, optimizer in _optimizers(run, inputs).items():
        alpha, probability = [], []
        for index in range(draws):
            estimator_generator.manual_seed(seed * 100_003 + index)  # paired: draw i shares (c, b) across estimators
            inputs_generator.manual_seed(seed)  # the same Cutout in every draw
            result = optimizer.hypergradient(train_batch, val_batch, estimator_generator)
            alpha.append(result.grad_alpha.flatten().double().cpu())
            probability.append(result.grad_probability.flatten().double().cpu())
            optimizer.estimator.zero_grad(set_to_none=True)  # c_phi's accumulated variance gradient
            with torch.no_grad():  # BN running statistics: train-mode forwards do not read them
                for name, value in run.model.named_buffers():
                    value.copy_(buffers[name])
        out[key] = {"alpha": torch.stack(alpha), "probability": torch.stack(probability)}
    run.optimizer.policy_optimizer.zero_grad(set_to_none=True)
    unchanged = all(torch.equal(value, policy[name]) for name, value in run.space.state_dict().items())
    if not unchanged or not all(torch.equal(w, v) for w, v in zip(run.model.parameters(), weights)):
        raise RuntimeError("the policy or the network changed while drawing hypergradients")
    return out


def statistics(estimates: dict[str, dict[str, torch.Tensor]], seed: int = 0) -> list[dict]:
    """Variance, distance from the unbiased reference (paired bootstrap SE) and noise floor per row."""
    rows = []
    for parameter in PARAMETERS:
        reference = torch.stack([estimates[key][parameter] for key in UNBIASED]).mean(0)  # per draw
        reference_mean = reference.mean(0)
        for key in ESTIMATORS:
            samples = estimates[key][parameter]
            count = samples.shape[0]
            difference = samples - reference
            resample = torch.randint(count, (BOOTSTRAP, count), generator=torch.Generator().manual_seed(seed))
            bootstrap = difference[resample].mean(1).norm(dim=1)
            rows.append(
                {
                    "estimator": key,
                    "parameter": parameter,
                    "variance": samples.var(0).mean().item(),
                    "distance": difference.mean(0).norm().item(),
                    "distance_se": bootstrap.std().item(),
                    "noise_floor": (difference.var(0).sum() / count).sqrt().item(),
                    "mean_norm": samples.mean(0).norm().item(),
                    "reference_norm": reference_mean.norm().item(),
                    "draws": count,
                }
            )
    return rows


def measure(cfg: DictConfig, draws: int, seed: int = 0) -> pd.DataFrame:
    """Advance the search with relax-official and measure every estimator at epochs 0, E/4 (>= 1) and E."""
    run = SearchRun(cfg)
    split = prepare_search_data(cfg.dataset, run.device)
    if run.steps_per_epoch(split) == 0:
        raise ValueError(
            f"{len(split.train_labels)} search-train images are fewer than one batch of "
            f"{run.batch_size}; raise dataset.search_images or lower --batch-size"
        )
    states = {"start": 0, "quarter": max(1, run.epochs // 4), "end": run.epochs}
    rows, done = [], 0
    for state, epochs in states.items():
        for epoch in range(done, epochs):
            run.search_epoch(epoch, split, NullTracker())  # the epoch's metrics are not needed here
            run.scheduler.step()
        done = epochs
        for row in statistics(draw_estimates(run, split, draws, seed), seed):
            rows.append({"state": state, "epoch": epochs, **row})
    frame = pd.DataFrame(rows)
    return frame.assign(
        scale=scale_name(cfg),
        dataset=cfg.dataset.name,
        model=cfg.model.name,
        epochs=run.epochs,
        batch_size=run.batch_size,
        seed=seed,
    )


def plot(frame: pd.DataFrame):
    """Two panels: mean per-coordinate variance (log) and distance from the unbiased mean (+-1 SE, noise floor)."""
    import matplotlib.pyplot as plt

    colors = {
        "gumbel": color("gumbel"),
        "relax-official": color("relax"),
        "relax-paper": "yellowgreen",
        "reinforce": "tab:blue",
    }  # reinforce blue as in analysis/estimators.py
    groups = list(dict.fromkeys(zip(frame["state"], frame["epoch"])))
    symbols = {"alpha": r"$\alpha$", "probability": r"$\beta$"}
    slots = [(state, epoch, parameter) for state, epoch in groups for parameter in PARAMETERS]
    width = 0.8 / len(ESTIMATORS)
    first = frame.iloc[0]
    with plt.rc_context(STYLE):
        figure, (variance_axis, distance_axis) = plt.subplots(1, 2, figsize=(13, 4.8))
        for offset, key in enumerate(ESTIMATORS):
            rows = frame[frame["estimator"] == key].set_index(["state", "parameter"])
            selected = rows.loc[[(state, parameter) for state, _, parameter in slots]]
            x = [slot + (offset - (len(ESTIMATORS) - 1) / 2) * width for slot in range(len(slots))]
            variance_axis.bar(x, selected["variance"], width=width, color=colors[key], label=LABELS[key])
            distance_axis.bar(
                x,
                selected["distance"],
                width=width,
                color=colors[key],
                yerr=selected["distance_se"],
                capsize=2,
                error_kw={"lw": 0.8},
            )
            distance_axis.scatter(
                x,
                selected["noise_floor"],
                marker="_",
                s=160,
                linewidths=2,
                color="black",
                zorder=3,
                label="noise floor: expected distance if the means were equal" if offset == 0 else None,
            )
        for axis in (variance_axis, distance_axis):
            axis.set_yscale("log")
            axis.set_xticks(range(len(slots)), [symbols[parameter] for _, _, parameter in slots])
            for group, (state, epoch) in enumerate(groups):
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
        variance_axis.set_ylabel("variance of one estimate (mean over coordinates)")
        variance_axis.set_title("per-coordinate variance")
        distance_axis.set_ylabel("L2 distance of the mean (+-1 bootstrap SE)")
        distance_axis.set_title(
            "distance of the mean from the average of the unbiased means\n(RELAX official, RELAX paper, REINFORCE)"
        )
        distance_axis.legend(fontsize=8, loc="upper left")
        handles, labels = variance_axis.get_legend_handles_labels()
        figure.legend(handles, labels, loc="lower center", ncol=2, fontsize=8, bbox_to_anchor=(0.5, -0.1))
        figure.suptitle(
            f"Hypergradient estimators at fixed search states: {first['scale']} scale (REDUCED, not the paper's "
            f"sizes), {first['model']} on {first['dataset']}, CPU\none fixed batch of {first['batch_size']}, "
            f"N = {first['draws']} paired draws per estimator, search of {first['epochs']} epochs advanced "
            f"with RELAX official",
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
    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(prog="python -m analysis.hypergradients", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="smoke", help="conf/scale: smoke or paper")
    parser.add_argument("--out", type=Path, default=Path("results"), help="where the CSV and figure go")
    parser.add_argument("--draws", type=int, default=200, help="estimates per estimator and state")
    parser.add_argument("--batch-size", type=int, default=16, help="the fixed batches' size (also the search's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--override", action="append", default=[], help="extra Hydra override of the search")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as run_dir:
        cfg = search_config(args.scale, args.batch_size, args.seed, Path(run_dir), args.override)
        frame = measure(cfg, args.draws, args.seed)
    for path in write(frame, args.out):
        print(path)


if __name__ == "__main__":
    main()
