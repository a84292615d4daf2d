"""The search-cost audit (analysis/audit): FLOP counts against hand counts, step counts from the protocol, the
protocol file's sources and coverage of Table 1(a), and the writer on a tiny configuration."""

import json

import pandas as pd
import pytest
import torch
import yaml
from torch import nn

from analysis.audit import write_audit
from analysis.audit.counting import MatmulShapesOnly, dada_step, paper_search_config
from analysis.audit.measured import NO_GPU, device_check_prediction
from analysis.audit.protocols import PROTOCOLS, Phase, load_claims, load_verdicts
from analysis.audit.rows import check_coverage, verdict
from analysis.paper import load_paper_results
from dada.tracking import flops


def test_conv_flops_match_the_hand_count():
    conv = nn.Conv2d(3, 8, kernel_size=3, padding=1, bias=False)
    model = nn.Sequential(conv, nn.AdaptiveAvgPool2d(1), nn.Flatten())
    forward = 2 * 2 * 8 * 16 * 16 * 3 * 3 * 3  # 2 FLOPs x batch x C_out x H x W x C_in x k x k
    assert flops.forward_flops(model, (2, 3, 16, 16)) == forward
    # training: the forward and the weight gradient (the same product); the images need no gradient
    assert flops.training_step_flops(model, (2, 3, 16, 16)) == 2 * forward


def test_linear_flops_match_the_hand_count():
    linear = nn.Linear(20, 5)
    assert flops.forward_flops(linear, (4, 20)) == 2 * 4 * 20 * 5
    assert flops.training_step_flops(linear, (4, 20)) == 2 * (2 * 4 * 20 * 5)


def test_steps_follow_from_the_protocol():
    phase = Phase(kind="train", network="wrn40_2", input_size=32, classes=10, images=4000, epochs=120, runs=15000)
    assert Phase(**{**phase.__dict__, "batch": 128}).steps == 15000 * 120 * 32  # ceil(4000 / 128) = 32
    assert Phase(**{**phase.__dict__, "batch": 100}).steps == 15000 * 120 * 40  # exact division
    pba = {(c.dataset, c.method): c for c in load_claims()}[("CIFAR-10", "PBA")]
    train, evaluation = pba.phases
    assert train.steps == 16 * 200 * 32  # scripts/search.sh: 16 trials, 200 epochs, 4000 images; batch 128
    assert evaluation.steps == 16 * 200 * 1840  # 46000 validation images at the test batch of 25


def test_every_protocol_number_has_a_source_and_every_cell_a_claim(tmp_path):
    claims = load_claims()
    check_coverage(claims, load_paper_results())
    assert len(claims) == 14  # the non-empty cells of Table 1(a)
    spec = yaml.safe_load(PROTOCOLS.read_text())
    del spec["PBA"]["SVHN"][0]["sources"]["epochs"]
    broken = tmp_path / "protocols.yaml"
    broken.write_text(yaml.safe_dump(spec))
    with pytest.raises(ValueError, match="no source .* for epochs"):
        load_claims(broken)
    with pytest.raises(ValueError, match="missing"):
        check_coverage(claims[1:], load_paper_results())


def test_verdict_thresholds():
    thresholds = load_verdicts()
    assert verdict(0.1, thresholds) == "plausible"
    assert verdict(0.005, thresholds) == "dominated by non-arithmetic time"
    assert verdict(0.6, thresholds) == "implausibly fast"
    assert "impossible" in verdict(1.5, thresholds)


def test_shapes_only_counting_at_two_batches_equals_a_real_step(estimator="relax"):
    """The zero-product mode, at batches 2 and 4 extended to 8, counts what a real search step of batch 8 counts
    (WRN-10-1, the CIFAR-10 setting)."""
    from dada.search.loop import SearchRun

    overrides = ("scale.model=wrn10_1", "scale.batch_size=8")
    counted = dada_step("search_cifar10", estimator, overrides)
    run = SearchRun(paper_search_config("search_cifar10", estimator, overrides))
    batch = (torch.rand(8, 3, 32, 32), torch.arange(8) % 10)
    draws = torch.Generator().manual_seed(0)
    real = flops.count_flops(run.optimizer.hypergradient, batch, (batch[0].clone(), batch[1].clone()), draws)
    assert counted.step_flops == real
    assert counted.network_flops < counted.step_flops
    assert counted.protocol_steps == 20 * 250  # 20 epochs x ceil(2000 / 8)


def test_shapes_only_mode_returns_zeros_of_the_right_shape():
    with MatmulShapesOnly():
        out = torch.mm(torch.ones(3, 4), torch.ones(4, 5))
    assert out.shape == (3, 5) and not out.any()


def test_device_check_file_turns_into_a_prediction(tmp_path):
    assert device_check_prediction(tmp_path) == NO_GPU
    epoch = {"extrapolated_device_hours": 0.05, "unit": "GPU-hours", "device_name": "NVIDIA H100", "epochs": 20}
    (tmp_path / "device_check_cuda.json").write_text(json.dumps({"mode": "full", "search_epoch": epoch}))
    (tmp_path / "device_check_cpu-tiny.json").write_text(json.dumps({"mode": "tiny", "search_epoch": epoch}))
    assert device_check_prediction(tmp_path).startswith("0.05 GPU-hours on NVIDIA H100")


def test_audit_writer_on_a_tiny_config(tmp_path):
    """Every published protocol on WRN-10-1 and DADA's searches at WRN-10-1, batch 4: the files and their rows."""
    spec = yaml.safe_load(PROTOCOLS.read_text())
    for method in ("AA", "PBA", "Fast AA", "OHL AA"):
        for phases in spec[method].values():
            for phase in phases:
                phase["network"] = "wrn10_1"
    protocols = tmp_path / "protocols.yaml"
    protocols.write_text(yaml.safe_dump(spec))
    overrides = ("scale.model=wrn10_1", "scale.batch_size=4")
    paths = write_audit(tmp_path, protocols, dada_overrides=overrides, pil_images=1, estimators=("relax",))
    assert sorted(path.name for path in paths) == sorted(
        f"search_cost_audit.{ext}" for ext in ("csv", "md", "png", "pdf")
    )
    rows = pd.read_csv(tmp_path / "search_cost_audit.csv")
    assert len(rows) == 14 and rows["utilisation"].gt(0).all()
    assert set(rows["verdict"].str.split(" \\(").str[0]) <= {
        "plausible",
        "implausibly fast",
        "dominated by non-arithmetic time",
    }
    text = (tmp_path / "search_cost_audit.md").read_text()
    assert NO_GPU in text and "Protocols and sources" in text
