"""FLOPs (dada.tracking.flops): the counts, the summaries that carry them, and the cost report on one scale."""

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from analysis.cost import cost_markdown, cost_report, titan_xp_hours
from analysis.paper import load_paper_results
from analysis.runs import read_runs
from analysis.tables import build_table
from dada.config import compose_app_config
from dada.schemas import SearchCost, SearchSummary, parse_summary
from dada.search.loop import SearchRun
from dada.tracking.flops import count_flops, forward_flops, training_step_flops
from dada.train import TrainRun
from reproduce.tables import get_layout

PAPER = load_paper_results()
FASHION = "Fashion-MNIST (embedded, not in the paper)"
RELAX = "ours, search cost, RELAX"


def _net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))


def test_training_step_counts_forward_and_weight_gradients_and_leaves_the_model_alone():
    model = _net().eval()
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    conv, linear = 2 * 2 * 36 * 4 * 27, 2 * 2 * 144 * 5  # batch 2: 2 FLOPs per multiply-add
    # backward: the weights' gradients of both layers, the linear layer's input gradient; not the images'
    assert training_step_flops(model, (2, 3, 8, 8)) == 2 * conv + 3 * linear
    assert forward_flops(model, (2, 3, 8, 8)) == conv + linear
    assert not model.training
    assert all(torch.equal(before[name], tensor) for name, tensor in model.state_dict().items())


def test_count_flops_runs_the_call():
    weight = torch.ones(3, 4)
    assert count_flops(torch.mm, torch.ones(2, 3), weight) == 2 * 2 * 3 * 4


def test_summaries_without_flops_read_as_not_measured():
    old = SearchSummary(
        name="s",
        seed=0,
        dataset="fashion-mnist",
        model="wrn10_1",
        scale="smoke",
        epochs=1,
        cost=SearchCost(unit="CPU-hours", device_name="CPU", device_count=1),
    ).to_dict()
    for key in ("flops", "network_flops", "policy_flops"):
        del old["cost"][key]
    assert parse_summary(old).cost.flops is None


def _write_search(root: Path, seed: int, **flops) -> None:
    run_dir = root / "smoke" / "search_fashion-mnist-on-wrn10_1" / "relax" / f"seed{seed}"  # smoke swaps in WRN-10-1
    run_dir.mkdir(parents=True)
    cost = SearchCost(unit="CPU-hours", device_name="Test CPU", device_count=1, search_device_hours=0.01, **flops)
    summary = SearchSummary(
        name="s",
        seed=seed,
        dataset="fashion-mnist",
        model="wrn10_1",
        scale="smoke",
        epochs=1,
        estimator="relax",
        cost=cost,
    )
    (run_dir / "summary.json").write_text(json.dumps({"status": "FINISHED", **summary.to_dict()}))


def _report(root: Path, tmp_path: Path):
    runs = read_runs(root)
    cells = build_table(get_layout("table1"), runs, PAPER, "smoke", tmp_path / "data")
    report = cost_report(cells, runs, PAPER, "smoke")
    return report, report.set_index("data set")


def test_cost_report_puts_paper_hours_and_our_flops_on_one_scale(tmp_path):
    root = tmp_path / "runs"
    for seed, total in ((0, 2e15), (1, 4e15)):
        _write_search(root, seed, flops=total, network_flops=total / 4, policy_flops=total / 2)
    report, rows = _report(root, tmp_path)
    fashion, cifar = rows.loc[FASHION], rows.loc["CIFAR-10"]
    assert fashion[f"{RELAX}: PFLOPs"] == "3"
    assert fashion[f"{RELAX}: Titan-XP-eq. hours"] == f"{3e15 / 12.1e12 / 3600:.3g}"
    assert fashion[f"{RELAX}: policy share of FLOPs"] == "67 %"
    assert fashion["ours, search cost, Gumbel: PFLOPs"] == "-"  # no runs
    assert cifar["paper AA (Titan-XP-eq. hours)"] == "4,380"  # 5000 P100-hours
    assert cifar["paper Fast AA (Titan-XP-eq. hours)"] == f"{3.5 * 15.7 / 12.1:.3g}"  # 3.5 V100-hours
    assert cifar["paper DADA (Titan-XP-eq. hours)"] == "0.1"
    assert cifar["paper OHL AA (Titan-XP-eq. hours)"] == "device not named"
    assert titan_xp_hours(12.1e12 * 3600, PAPER) == pytest.approx(1.0)
    text = cost_markdown(report, PAPER, "smoke")
    assert "Titan-XP-eq. hours" in text and "TITAN Xp 12.1 TFLOPS" in text and "AA on Tesla P100" in text


def test_cost_report_says_not_measured_for_old_summaries(tmp_path):
    root = tmp_path / "runs"
    _write_search(root, 0)
    _, rows = _report(root, tmp_path)
    assert rows.loc[FASHION, f"{RELAX}: PFLOPs"] == "not measured"
    assert rows.loc[FASHION, f"{RELAX}: policy share of FLOPs"] == "not measured"
    assert rows.loc[FASHION, RELAX].startswith("0.01 CPU-hours")
    _write_search(root, 1, flops=1e15, network_flops=5e14, policy_flops=5e14)
    _, rows = _report(root, tmp_path)
    assert rows.loc[FASHION, f"{RELAX}: PFLOPs"] == "1 (1 of 2 runs counted)"
    assert rows.loc[FASHION, f"{RELAX}: policy share of FLOPs"] == "50 %"


@pytest.mark.slow
def test_search_summary_splits_flops_into_network_and_policy(search_config):
    cfg = search_config("scale.search_images=64", "scale.batch_size=16")
    run = SearchRun(cfg)
    cost = run.run()["cost"]
    steps = 32 // 16
    network = training_step_flops(run.model, (16, 3, 32, 32)) * steps
    validation = forward_flops(run.model, (32, 3, 32, 32))
    assert cost["network_flops"] == network
    assert cost["flops"] == cost["network_flops"] + cost["policy_flops"] + validation
    assert 0.5 < cost["policy_flops"] / (cost["policy_flops"] + cost["network_flops"]) < 0.9


@pytest.mark.slow
def test_train_summary_counts_training_steps_and_test_passes(tmp_path):
    overrides = [
        f"run_dir={tmp_path / 'run'}",
        "scale.train_images=64",
        "scale.test_images=32",
        "scale.train_epochs=1",
        "scale.batch_size=32",
        "policy=none",
        "num_workers=0",
    ]
    cfg = compose_app_config("train", overrides)
    run = TrainRun(cfg)
    summary = run.run()
    expected = training_step_flops(run.model, (32, 3, 32, 32)) * 2 + forward_flops(run.model, (32, 3, 32, 32))
    assert summary["cost"]["flops"] == expected
