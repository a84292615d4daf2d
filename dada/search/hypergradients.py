"""Variance, signal-to-noise and bias of the search's hypergradient estimators at fixed search states (issue 22).

    python -m dada.search.hypergradients --scale smoke --out runs/smoke/estimator-hypergradient/hypergradients.csv

Two seeded searches with estimator relax run in this process, one per ``search.variant``: ``official`` and
``paper`` (ζ kept, ops on the [0, 1] images, β and m projected, one RELAX estimate of the finite difference
whose c_phi trains on mean(ĝ²)). Each is stopped before any step, after a quarter of its epochs (at least one)
and after all of them. At each state one training batch (crop and flip drawn once) and one validation batch
are fixed, and ``BiLevelOptimizer.hypergradient`` is drawn N times with each estimator of that search's
variant on the same network and policy, nothing updated in between:

- official search: ``gumbel`` (straight-through, biased), ``relax`` (difference of two estimates, so c_phi
  cancels) and ``reinforce`` (whose baseline cancels the same way);
- paper search: ``relax`` with the search's own trained c_phi, and ``reinforce`` (its moving-average baseline
  starts at zero and follows the draws; it never depends on the current draw, so the estimate stays unbiased).

Draw i of every estimator on a search uses the same seed, hence the same sub-policy and gates (paired draws);
the Cutout is the same in every draw, so the only noise is the estimator's. Per row (search, state, estimator,
parameter α or β): the per-coordinate variance averaged over coordinates; the per-coordinate signal-to-noise
|mean| / sd (median and maximum over coordinates, and the fraction of coordinates whose mean exceeds
``RESOLVED`` standard errors sd/√N, about 5 % under pure noise); the L2 norm of the mean beside its noise floor
``sqrt(D·var/N)`` (its expected size if the true mean were zero); and the L2 distance of the mean from the
average of that search's unbiased estimators, with a paired bootstrap standard error and its noise floor
``sqrt(trace Cov(d) / N)`` (d = draw minus reference draw). A mean or a bias counts as resolved only where it
exceeds ``RESOLVED`` times its noise floor; no bias is claimed otherwise. α's score is ×1 here; the official
code's is ×210 (FIDELITY.md row 24), which would scale the official search's score-based estimates of α
(whose c_phi cancels) by 210: variance ×210², SNR unchanged. The paper RELAX's c_phi terms are not scaled.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pandas as pd
import torch
from omegaconf import DictConfig

from dada import estimators
from dada.config import compose_app_config
from dada.data.search_set import SearchData, prepare_search_data
from dada.run import NullTracker
from dada.scale import scale_name
from dada.search.augment import SearchInputs
from dada.search.bilevel import BiLevelOptimizer
from dada.search.loop import SearchRun

ESTIMATORS = {"official": ("gumbel", "relax", "reinforce"), "paper": ("relax", "reinforce")}
UNBIASED = ("relax", "reinforce")
PARAMETERS = ("alpha", "probability")
RESOLVED = 2.0
"""A mean (or bias) is resolved where its norm exceeds this many noise floors (pure noise gives about one)."""
BOOTSTRAP = 200
ALPHA_NOTE = (
    "alpha score x1 here; the official code's is x210 (FIDELITY.md row 24): "
    "official-search score estimates' variance x210^2, SNR unchanged"
)
NOTE = f"no mean or bias is claimed unless it exceeds {RESOLVED:g}x its noise floor"


def search_config(
    scale: str, variant: str, batch_size: int, seed: int, run_dir: Path, overrides: list[str] = ()
) -> DictConfig:
    """The search app's config: ``scale``, estimator relax, ``variant``, CPU, with ``overrides`` last."""
    return compose_app_config(
        "search",
        [
            f"scale={scale}",
            "estimator=relax",
            f"search.variant={variant}",
            "device=cpu",
            "logger=jsonl",
            f"scale.batch_size={batch_size}",
            f"seed={seed}",
            f"run_dir={run_dir}",
            *overrides,
        ],
    )


def _optimizers(run: SearchRun, inputs: SearchInputs) -> dict[str, BiLevelOptimizer]:
    """One BiLevelOptimizer per estimator of the run's variant over its network, policy and optimiser states."""
    space, recipe = run.space, run.cfg.search
    optimizers = {}
    for name in ESTIMATORS[run.variant.name]:
        options = run.estimator_options() if name == run.cfg.estimator.name else {}
        estimator = estimators.create(
            name,
            space.num_sub_policies,
            space.probability.numel(),
            run.cfg.estimator.temperature,
            boundary="straight_through" if run.variant.project else "freeze",
            **{k: v for k, v in options.items() if k != "temperature"},
        )
        if name == run.cfg.estimator.name:
            estimator.load_state_dict(run.estimator.state_dict())  # the state's own trained c_phi
        optimizers[name] = BiLevelOptimizer(
            run.model,
            space,
            estimator,
            run.optimizer.network_optimizer,
            run.optimizer.policy_optimizer,
            recipe.grad_clip,
            inputs,
            recipe.fd_epsilon,
            run.variant,
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
        official=run.variant.on_network_input,
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


def _row(samples: torch.Tensor, reference: torch.Tensor, generator: torch.Generator) -> dict:
    """One row's statistics from ``[N, D]`` draws and the paired reference draws."""
    count = samples.shape[0]
    mean, variance = samples.mean(0), samples.var(0)
    snr = mean.abs() / variance.sqrt().clamp_min(torch.finfo(variance.dtype).tiny)
    difference = samples - reference
    resample = torch.randint(count, (BOOTSTRAP, count), generator=generator)
    row = {
        "variance": variance.mean().item(),
        "snr_median": snr.median().item(),
        "snr_max": snr.max().item(),
        "coords_resolved": (snr * count**0.5 > RESOLVED).double().mean().item(),  # |mean| > RESOLVED·sd/√N
        "mean_norm": mean.norm().item(),
        "mean_noise_floor": (variance.sum() / count).sqrt().item(),  # sqrt(D·var/N)
        "distance": difference.mean(0).norm().item(),
        "distance_se": difference[resample].mean(1).norm(dim=1).std().item(),
        "noise_floor": (difference.var(0).sum() / count).sqrt().item(),
        "reference_norm": reference.mean(0).norm().item(),
        "draws": count,
    }
    row["mean_resolved"] = row["mean_norm"] > RESOLVED * row["mean_noise_floor"]
    row["bias_resolved"] = row["distance"] > RESOLVED * row["noise_floor"]
    return row


def statistics(estimates: dict[str, dict[str, torch.Tensor]], seed: int = 0) -> list[dict]:
    """Per estimator and parameter: variance, SNR, the mean's and the bias's size beside their noise floors."""
    rows = []
    unbiased = [key for key in UNBIASED if key in estimates]
    for parameter in PARAMETERS:
        reference = torch.stack([estimates[key][parameter] for key in unbiased]).mean(0)  # per draw
        for key, samples in estimates.items():
            generator = torch.Generator().manual_seed(seed)
            note = f"{NOTE}; {ALPHA_NOTE}" if parameter == "alpha" else NOTE
            row = _row(samples[parameter], reference, generator)
            rows.append({"estimator": key, "parameter": parameter, **row, "note": note})
    return rows


def measure(cfg: DictConfig, draws: int, seed: int = 0) -> pd.DataFrame:
    """Advance the search ``cfg`` and measure its variant's estimators at epochs 0, E/4 (>= 1) and E."""
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
        lr = run.optimizer.network_optimizer.param_groups[0]["lr"]
        zeta = lr if run.variant.scale_by_lr else 1.0
        for row in statistics(draw_estimates(run, split, draws, seed), seed):
            rows.append({"search": run.variant.name, "state": state, "epoch": epochs, "zeta": zeta, **row})
    frame = pd.DataFrame(rows)
    return frame.assign(
        scale=scale_name(cfg),
        dataset=cfg.dataset.name,
        model=cfg.model.name,
        epochs=run.epochs,
        batch_size=run.batch_size,
        seed=seed,
    )


def default_out(scale: str, seed: int) -> Path:
    return Path("runs") / scale / "estimator-hypergradient" / f"seed{seed}" / "hypergradients.csv"


def main(argv: list[str] | None = None) -> None:
    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(prog="python -m dada.search.hypergradients", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="smoke", help="conf/scale: smoke or paper")
    parser.add_argument("--out", type=Path, help="the CSV (default runs/<scale>/estimator-hypergradient/seed<N>/)")
    parser.add_argument("--draws", type=int, default=200, help="estimates per estimator and state")
    parser.add_argument("--batch-size", type=int, default=16, help="the fixed batches' size (also the search's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variant", action="append", choices=list(ESTIMATORS), help="searches to run (default both)")
    parser.add_argument("--override", action="append", default=[], help="extra Hydra override of the searches")
    args = parser.parse_args(argv)
    frames = []
    for variant in args.variant or list(ESTIMATORS):
        with tempfile.TemporaryDirectory() as run_dir:
            cfg = search_config(args.scale, variant, args.batch_size, args.seed, Path(run_dir), args.override)
            frames.append(measure(cfg, args.draws, args.seed))
    out = args.out or default_out(args.scale, args.seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    pd.concat(frames, ignore_index=True).to_csv(out, index=False, float_format="%.6g")
    print(out)


if __name__ == "__main__":
    main()
