"""Bias and variance of the gradient estimators on toy problems with exact gradients.

    python -m analysis.estimators --out results/    # estimators_toy.csv, estimators_toy.png, estimators_toy.pdf

For each problem of ``dada.estimators.toy`` and each estimator (RELAX both before and after training
its surrogate c_phi), draws N gradient estimates from one fixed seed and reports, per coordinate of
alpha and beta, the bias (mean - exact), its standard error and the variance of a single estimate.
"""

import argparse
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch
from omegaconf import OmegaConf

from analysis.style import save_figure, use_file_backend
from dada.config import CONF_DIR
from dada.estimators import create, toy

ESTIMATOR_LABELS = {
    "gumbel": "Gumbel-Softmax (straight-through)",
    "reinforce": "REINFORCE (moving-average baseline)",
    "relax_untrained": r"RELAX, untrained $c_\phi$",
    "relax_trained": r"RELAX, trained $c_\phi$",
}
COLORS = {"gumbel": "tab:orange", "reinforce": "tab:blue", "relax_untrained": "tab:gray", "relax_trained": "tab:green"}
PROBLEMS = ("categorical", "bernoulli", "joint")


def _statistics(problem: toy.ToyProblem, key: str, grads: tuple[torch.Tensor, torch.Tensor]) -> list[dict]:
    """One row per coordinate; a single category (the gate-only problem's dummy) has nothing to estimate."""
    rows = []
    for parameter, samples, exact in zip(("alpha", "beta"), grads, problem.exact_gradients()):
        if exact.numel() == 0 or (parameter == "alpha" and exact.numel() == 1):
            continue
        mean, variance = samples.mean(dim=0), samples.var(dim=0)
        for index in range(exact.numel()):
            rows.append(
                {
                    "problem": problem.name,
                    "estimator": key,
                    "coordinate": f"{parameter}[{index}]",
                    "exact": exact[index].item(),
                    "mean": mean[index].item(),
                    "bias": (mean[index] - exact[index]).item(),
                    "standard_error": (variance[index] / samples.shape[0]).sqrt().item(),
                    "variance": variance[index].item(),
                    "num_samples": samples.shape[0],
                }
            )
    return rows


def paper_temperature() -> float:
    """The paper's tau (section 4.1), as the search reads it from conf/estimator/."""
    return float(OmegaConf.load(CONF_DIR / "estimator" / "relax.yaml").temperature)


def _measure_problem(
    problem: toy.ToyProblem, num_samples: int, training_steps: int, seed: int, temperature: float
) -> list[dict]:
    """Every estimator on one problem at ``temperature``, all evaluated on the same random numbers (seed)."""
    sizes = (problem.alpha.numel(), problem.beta.numel())

    def evaluate(estimator):
        return toy.draw_estimates(estimator, problem, num_samples, torch.Generator().manual_seed(seed))

    rows = []
    for name in ("gumbel", "reinforce"):
        rows += _statistics(problem, name, evaluate(create(name, *sizes, temperature=temperature)))
    torch.manual_seed(seed)  # the surrogate's initial weights
    relax = create("relax", *sizes, temperature=temperature)
    rows += _statistics(problem, "relax_untrained", evaluate(relax))
    toy.train_surrogate(relax, problem, training_steps, torch.Generator().manual_seed(seed + 1))
    rows += _statistics(problem, "relax_trained", evaluate(relax))
    return rows


def measure(num_samples: int = 5000, training_steps: int = 500, seed: int = 0) -> pd.DataFrame:
    """Bias and variance per coordinate, estimator and toy problem, as one long table, at the paper's tau."""
    rows, temperature = [], paper_temperature()
    for problem_name in PROBLEMS:
        rows += _measure_problem(toy.PROBLEMS[problem_name](), num_samples, training_steps, seed, temperature)
    return pd.DataFrame(rows)


def plot(frame: pd.DataFrame) -> plt.Figure:
    """Bias (with +-2 standard errors) and log-variance per coordinate; one column per problem."""
    problems = list(dict.fromkeys(frame["problem"]))
    figure, axes = plt.subplots(2, len(problems), figsize=(5 * len(problems), 7), squeeze=False)
    width = 0.8 / len(ESTIMATOR_LABELS)
    for column, problem in enumerate(problems):
        rows = frame[frame["problem"] == problem]
        coordinates = list(dict.fromkeys(rows["coordinate"]))
        bias_axis, variance_axis = axes[0, column], axes[1, column]
        for offset, (key, label) in enumerate(ESTIMATOR_LABELS.items()):
            selected = rows[rows["estimator"] == key].set_index("coordinate").loc[coordinates]
            x = [index + (offset - (len(ESTIMATOR_LABELS) - 1) / 2) * width for index in range(len(coordinates))]
            bias_axis.errorbar(
                x,
                selected["bias"],
                yerr=2 * selected["standard_error"],
                fmt="o",
                ms=4,
                color=COLORS[key],
                label=label,
                capsize=2,
            )
            variance_axis.bar(x, selected["variance"], width=width, color=COLORS[key], label=label)
        bias_axis.axhline(0.0, color="black", lw=0.8)
        bias_axis.set_title(f"{problem} problem")
        bias_axis.set_ylabel("bias = mean estimate - exact gradient")
        variance_axis.set_yscale("log")
        variance_axis.set_ylabel("variance of one estimate")
        for axis in (bias_axis, variance_axis):
            axis.set_xticks(range(len(coordinates)), coordinates, rotation=45, fontsize=8)
    axes[0, 0].legend(fontsize=8, loc="best")
    num_samples = int(frame["num_samples"].iloc[0])
    figure.suptitle(
        "Gradient estimators on toy problems with exact gradients: bias (error bars 2 SE) and variance per "
        f"coordinate\nN = {num_samples} samples per estimator, tau = {paper_temperature()}, "
        r"$f(c, b) = \mathrm{table}[c] + \sum_i (b_i - t_i)^2$"
    )
    figure.tight_layout()
    return figure


def write(frame: pd.DataFrame, out_dir: str | Path) -> None:
    """Save ``estimators_toy.csv``, ``.png`` and ``.pdf`` under ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out_dir / "estimators_toy.csv", index=False)
    save_figure(plot(frame), out_dir, "estimators_toy")


def main(argv: list[str] | None = None) -> None:
    use_file_backend()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results", help="output folder")
    parser.add_argument("--samples", type=int, default=5000, help="gradient estimates per estimator and problem")
    parser.add_argument("--training-steps", type=int, default=500, help="Adam steps for RELAX's surrogate")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # tiny tensors: intra-op threads only add overhead
    frame = measure(args.samples, args.training_steps, args.seed)
    write(frame, args.out)
    summary = frame.assign(abs_bias=frame["bias"].abs()).groupby(["problem", "estimator"])[["abs_bias", "variance"]]
    print("mean over coordinates of |bias| and variance:")
    print(summary.mean().to_string(float_format="{:.4g}".format))


if __name__ == "__main__":
    main()
