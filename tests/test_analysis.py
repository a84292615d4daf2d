"""The analysis: fabricated run folders -> the right cells, the paper column, mean ± CI, notes, paper-shaped tables."""

import json
import math
import re

import matplotlib.pyplot as plt
import pandas as pd
import pytest
import yaml

from analysis.__main__ import main
from analysis.cost import cost_report
from analysis.figures import fig1
from analysis.paper import load_paper_results, lookup
from analysis.report import TABLES, Context, write_results, write_table
from analysis.runs import read_runs, read_runs_mlflow
from analysis.tables import TABLE1_REFERENCES, build_table, paired_table
from dada.schemas import EvalCost, PolicyInfo, SearchCost, SearchSummary, TrainSummary
from reproduce.plan import experiment_folder
from reproduce.tables import LAYOUTS, SEARCH_COST, get_layout

PAPER = load_paper_results()


def write_run(root, scale, experiment, variant, seed, summary, status="FINISHED", epochs=()):
    """A run folder as the apps leave it: summary.json, and metrics.jsonl / config.yaml for a search."""
    run_dir = root / scale / experiment_folder(experiment, scale) / variant / f"seed{seed}"  # where the app writes
    run_dir.mkdir(parents=True)
    (run_dir / "summary.json").write_text(json.dumps({"status": status, **summary}))
    if epochs:
        (run_dir / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in epochs))
        (run_dir / "config.yaml").write_text(yaml.safe_dump({"search": {"ops_per_sub_policy": 2, "ordered": False}}))
    return run_dir


def search_summary(hours, estimator="relax", unit="CPU-hours", overlap=None):
    cost = SearchCost(unit=unit, device_name="Test CPU", device_count=1, search_device_hours=hours)
    return SearchSummary(
        name="s",
        seed=0,
        dataset="fashion-mnist",
        model="wrn10_1",
        scale="smoke",
        epochs=2,
        estimator=estimator,
        cost=cost,
        top_overlap_with_other_seeds=overlap or {},
    ).to_dict()


def train_summary(error, policy="dada"):
    cost = EvalCost(unit="CPU-hours", device_name="Test CPU", device_count=1, eval_device_hours=0.01)
    return TrainSummary(
        name="t",
        seed=0,
        dataset="fashion-mnist",
        model="wrn10_1",
        scale="smoke",
        epochs=2,
        policy=PolicyInfo(policy, None, True, 0),
        test_error_top1=error,
        test_error_top5=error / 10,
        cost=cost,
    ).to_dict()


def search_epochs(seed):
    """Two epochs of per-epoch search metrics: the policy (105 sub-policies) and gradient variances."""
    lines = []
    for epoch in (1, 2):
        line = {"step": epoch * 7, "epoch": epoch, "search/train_loss": 2.0}
        line.update(
            {f"grad/{group}/variance": 10.0 ** -(epoch + seed) for group in ("alpha", "probability", "magnitude")}
        )
        line.update({f"policy/weight/{i:03d}": (2.0 if i == seed else 1.0) / 106 for i in range(105)})
        line.update(
            {
                f"policy/{name}/{i:03d}_{j}": 0.5
                for name in ("probability", "magnitude")
                for i in range(105)
                for j in range(2)
            }
        )
        lines.append(line)
    return lines


@pytest.fixture
def smoke_runs(tmp_path):
    """Table 1's Fashion-MNIST row for seeds 0 and 1 (seed 1's searches share 40 % / 80 % of their top-25 with
    seed 0's), and CIFAR-10's DADA column (data absent)."""
    root = tmp_path / "runs"
    errors = {"none": (20.0, 22.0), "random": (19.0, 19.0), "dada-gumbel": (18.0, 20.0), "dada-relax": (17.0, 18.0)}
    for seed in (0, 1):
        for estimator, hours, overlap in (("relax", (0.01, 0.03), 0.4), ("gumbel", (0.02, 0.02), 0.8)):
            summary = search_summary(hours[seed], estimator, overlap={"seed0": overlap} if seed else None)
            write_run(root, "smoke", "search_fashion-mnist", estimator, seed, summary, epochs=search_epochs(seed))
        for column, values in errors.items():
            write_run(root, "smoke", "table1_fashion-mnist_wrn40_2", column, seed, train_summary(values[seed]))
        write_run(root, "smoke", "table2_cifar10_wrn28_10", "dada-relax", seed, train_summary(3.0 + seed))
    return root


def table1_cells(runs_root, data_root, seeds=None):
    return build_table(get_layout("table1"), read_runs(runs_root), PAPER, "smoke", data_root, seeds)


def cell(frame, row, column):
    return frame[(frame["row"] == row) & (frame["column"] == column)].iloc[0]


FASHION = "Fashion-MNIST (embedded, not in the paper)"


T_975_DF1 = 12.706204736174698  # t_{0.975, 1}


def test_table1_mean_std_ci_over_seeds(smoke_runs, tmp_path):
    frame = table1_cells(smoke_runs, tmp_path / "data")
    relax = cell(frame, FASHION, "test error, DADA (RELAX)")
    assert relax["ours_mean"] == pytest.approx(17.5) and relax["n"] == 2
    assert relax["ours_std"] == pytest.approx(math.sqrt(0.5))  # sample std of (17, 18)
    assert relax["ci_half_width"] == pytest.approx(T_975_DF1 * math.sqrt(0.5) / math.sqrt(2))
    assert (relax["ci_low"], relax["ci_high"]) == pytest.approx((17.5 - 6.3531, 17.5 + 6.3531), abs=1e-4)
    assert math.isnan(relax["paper"]) and math.isnan(relax["difference"])  # not a paper row
    assert cell(frame, FASHION, "test error, random policy")["ours_std"] == 0.0
    assert cell(frame, FASHION, "search cost, RELAX")["ours_mean"] == pytest.approx(0.02)


def test_table1_paper_column_and_difference(smoke_runs, tmp_path):
    frame = table1_cells(smoke_runs, tmp_path / "data")
    cifar = cell(frame, "CIFAR-10", "test error, DADA (RELAX)")
    assert cifar["paper"] == 2.7 and cifar["paper_table"] == "table1b"
    assert cifar["ours_mean"] == pytest.approx(3.5)
    assert cifar["difference"] == pytest.approx(3.5 - 2.7)
    assert cell(frame, "ImageNet", "search cost, RELAX")["paper"] == 1.3


def test_missing_data_marks_cells_not_run(smoke_runs, tmp_path):
    frame = table1_cells(smoke_runs, tmp_path / "data")
    cifar100 = cell(frame, "CIFAR-100", "test error, DADA (RELAX)")
    assert cifar100["n"] == 0 and math.isnan(cifar100["ours_mean"])
    assert cifar100["note"] == f"not run: no data at {tmp_path / 'data' / 'cifar-100-python'}"
    assert cell(frame, "ImageNet", "search cost, RELAX")["note"].startswith(
        f"not run: no data at {tmp_path / 'data' / 'imagenet'}"
    )
    # CIFAR-10's searches were not run either, while its fabricated evaluations exist
    assert cell(frame, "CIFAR-10", "search cost, RELAX")["note"].startswith("not run: no data")


def test_cpu_hours_are_not_subtracted_from_gpu_hours(tmp_path):
    root = tmp_path / "runs"
    run_dir = write_run(root, "smoke", "search_cifar10", "relax", 0, search_summary(0.5, unit="CPU-hours"))
    frame = table1_cells(root, tmp_path / "data")
    assert math.isnan(cell(frame, "CIFAR-10", "search cost, RELAX")["difference"])
    (run_dir / "summary.json").write_text(json.dumps({"status": "FINISHED", **search_summary(0.5, unit="GPU-hours")}))
    frame = table1_cells(root, tmp_path / "data")
    assert cell(frame, "CIFAR-10", "search cost, RELAX")["difference"] == pytest.approx(0.5 - 0.1)


def test_unfinished_runs_do_not_count(smoke_runs, tmp_path):
    write_run(smoke_runs, "smoke", "table1_fashion-mnist_wrn40_2", "none", 2, train_summary(99.0), status="FAILED")
    frame = table1_cells(smoke_runs, tmp_path / "data")
    assert cell(frame, FASHION, "test error, no policy")["ours_mean"] == pytest.approx(21.0)
    only_seed_0 = table1_cells(smoke_runs, tmp_path / "data", seeds=[0])
    assert cell(only_seed_0, FASHION, "test error, no policy")["n"] == 1


def test_failed_run_is_named(tmp_path):
    root = tmp_path / "runs"
    write_run(root, "smoke", "search_fashion-mnist", "relax", 0, search_summary(0.1), status="FAILED")
    frame = table1_cells(root, tmp_path / "data")
    assert cell(frame, FASHION, "search cost, RELAX")["note"].startswith("failed: FAILED")


def test_paper_values_never_in_ours_columns(tmp_path):
    frame = table1_cells(tmp_path / "runs", tmp_path / "data")  # no runs at all
    assert frame["ours_mean"].isna().all() and (frame["n"] == 0).all()
    assert frame["paper"].notna().sum() == 16  # Table 1(a): DADA; 1(b): AA, Fast AA, DADA; on four data sets


def test_every_paper_reference_resolves():
    for name in LAYOUTS:
        for layout_cell in get_layout(name).cells:
            if layout_cell.paper is not None:
                ref = layout_cell.paper
                assert lookup(PAPER, ref.table, ref.row, ref.column) is not None


def test_figure_points_match_the_tables():
    def value(table, row, column):
        return lookup(PAPER, table, row, column)["value"]

    for method in ("AA", "PBA", "Fast AA", "OHL AA", "DADA"):
        assert value("fig1", method, "search GPU-hours") == value("table1a", "CIFAR-10", method)
        assert value("fig1", method, "test error (%)") == value("table1b", "CIFAR-10", method)
    assert value("fig3b", "AA", "test error (%)") == value("table2", "CIFAR-10 / Wide-ResNet-40-2", "AA")
    assert value("fig3b", "DADA (reduced CIFAR-10)", "test error (%)") == value(
        "table6", "CIFAR-10 / Wide-ResNet-40-2", "Reduced CIFAR-10"
    )


def test_fig1_draws_our_fast_aa_error_as_a_level(smoke_runs, tmp_path):
    write_run(smoke_runs, "smoke", "table1_fashion-mnist_wrn40_2", "fastaa", 0, train_summary(16.0, "fastaa"))
    cells = build_table(get_layout("fig1"), read_runs(smoke_runs), PAPER, "smoke", tmp_path / "data")
    fashion, cifar = cell(cells, FASHION, "test error, Fast AA"), cell(cells, "CIFAR-10", "test error, Fast AA")
    assert (fashion["ours_mean"], fashion["n"]) == (16.0, 1) and math.isnan(fashion["paper"])
    assert cifar["paper"] == 2.7 and cifar["note"].startswith("not run: no data")
    figure = fig1(cells, PAPER, "smoke")
    labels = figure.axes[1].get_legend_handles_labels()[1]
    assert "ours: Fashion-MNIST, Fast AA's released policy: 16.00 % (n=1, search not run)" in labels
    plt.close(figure)


def test_write_table_names_scale_in_title_and_file(smoke_runs, tmp_path):
    context = Context("smoke", smoke_runs, tmp_path / "results", tmp_path / "data")
    path = write_table("table1", read_runs(smoke_runs), context)
    assert path.name == "table1_smoke.md"
    text = path.read_text()
    assert "smoke scale, REDUCED" in text.splitlines()[0]
    assert "ours: wrn10_1 on Test CPU (CPU-hours)" in text.splitlines()[0]  # the network run, not the row's
    assert "the paper's full-scale result" in text and "95 % t confidence interval" in text
    assert f"paper 17.5 (not run: no data at {tmp_path / 'data' / 'cifar-100-python'})" in text
    assert "Li et al., ECCV 2020, Table 1(b)" in text
    csv = pd.read_csv(tmp_path / "results" / "table1_smoke.csv")
    assert {
        "paper",
        "ours_mean",
        "ours_std",
        "n",
        "ci_half_width",
        "ci_low",
        "ci_high",
        "difference",
        "top_overlap",
        "overlap_pairs",
    } <= set(csv.columns)
    assert len(csv) == len(get_layout("table1").cells)  # long: one line per cell
    assert (tmp_path / "results" / "cost_smoke.csv").is_file()


def test_cost_report_beside_paper_hours(smoke_runs, tmp_path):
    runs = read_runs(smoke_runs)
    frame = cost_report(table1_cells(smoke_runs, tmp_path / "data"), runs, PAPER, "smoke")
    cifar = frame[frame["data set"] == "CIFAR-10"].iloc[0]
    assert cifar["paper AA (GPU-hours)"] == "5000" and cifar["paper OHL AA (GPU-hours)"] == "83.4*"
    fashion = frame[frame["data set"] == FASHION].iloc[0]
    assert (
        fashion["ours, search cost, RELAX"]
        == "0.02 ± 0.127 CPU-hours = 72 ± 457 s (95 % CI, n=2) on Test CPU (CPU-hours)"
    )
    assert cifar["ours, search cost, RELAX"] == f"not run: no data at {tmp_path / 'data' / 'cifar-10-batches-py'}"


def markdown_tables(text):
    """Every Markdown table of ``text`` under its ``##`` heading: heading -> (header, rows), rows as cell lists."""
    tables, heading = {}, None
    for line in text.splitlines():
        if line.startswith("#"):
            heading = line.lstrip("# ")
        elif line.startswith("| ") and not line.startswith("| ---"):
            cells = [cell.strip() for cell in line.strip("|").split(" | ")]
            if heading in tables:
                tables[heading][1].append(cells)
            else:
                tables[heading] = (cells, [])
    return tables


def test_markdown_has_methods_as_rows_and_data_sets_as_columns(smoke_runs, tmp_path):
    text = write_table(
        "table1", read_runs(smoke_runs), Context("smoke", smoke_runs, tmp_path / "results", tmp_path / "data")
    ).read_text()
    header, rows = markdown_tables(text)["Test error (%)"]
    assert header == ["Method", FASHION, "CIFAR-10", "CIFAR-100", "SVHN", "ImageNet"]
    assert [row[0] for row in rows] == [
        "no policy",
        "Cutout",
        "random policy",
        "AA",
        "RandAugment",
        "TrivialAugment",
        "Fast AA",
        "DADA (Gumbel)",
        "DADA (RELAX)",
        "DADA (RELAX, paper variant)",
        "train error, no policy",
    ]
    by_method = {row[0]: dict(zip(header, row)) for row in rows}
    assert by_method["DADA (RELAX)"][FASHION] == "17.50 ± 6.35"  # mean ± 95 % CI half-width, no paper cell
    assert by_method["DADA (RELAX)"]["CIFAR-10"] == "3.50 ± 6.35 (paper 2.7)"
    assert by_method["AA"]["SVHN"] == f"paper 1.1 (not run: no data at {tmp_path / 'data' / 'svhn'})"
    assert by_method["Cutout"][FASHION] == "not run yet"
    search_header, search = markdown_tables(text)["Search"]
    assert search_header[1:] == header[1:]
    relax = {row[0]: row[1] for row in search}
    assert relax["RELAX: cost"] == "0.02 ± 0.127 CPU-hours = 72 ± 457 s"
    assert relax["RELAX: top-25 overlap between seeds"] == "0.40 (1 pair)"
    assert relax["Gumbel: top-25 overlap between seeds"] == "0.80 (1 pair)"
    cifar = dict(zip(search_header, search[0]))["CIFAR-10"]
    assert cifar == f"paper 0.1 GPU-hours (not run: no data at {tmp_path / 'data' / 'cifar-10-batches-py'})"


@pytest.mark.parametrize("name", TABLES)
def test_paper_values_appear_only_with_the_word_paper(smoke_runs, tmp_path, name):
    text = write_table(
        name, read_runs(smoke_runs), Context("smoke", smoke_runs, tmp_path / "results", tmp_path / "data")
    ).read_text()
    tables = text.split("Paper values:")[0]  # the citations below the tables name no values
    layout = get_layout(name)
    values = {
        lookup(PAPER, cell.paper.table, cell.paper.row, cell.paper.column)["value"]
        for cell in layout.cells
        if cell.paper is not None
    }
    shown = {
        form for value in values if not math.isnan(value) for form in (f"{value:g}", f"{value:.1f}") if "." in form
    }  # a bare "14" would also match the pytest folder in the notes' paths
    assert shown
    for form in shown:
        for match in re.finditer(rf"(?<![\d.]){re.escape(form)}(?!\d)", tables):
            assert tables[: match.start()].endswith("paper "), (name, tables[match.start() - 40 : match.end()])
    header, rows = markdown_tables(text)[layout.heading]
    assert header[0] == "Method" and len(rows) == len({c.column for c in layout.cells if c.metric != SEARCH_COST})


def test_one_seed_and_other_counts_are_marked(smoke_runs, tmp_path):
    write_run(smoke_runs, "smoke", "table1_fashion-mnist_wrn40_2", "cutout", 0, train_summary(15.0, "cutout"))
    text = write_table(
        "table1", read_runs(smoke_runs), Context("smoke", smoke_runs, tmp_path / "results", tmp_path / "data")
    ).read_text()
    assert "n = 2 seeds per cell unless a cell says otherwise" in text
    header, rows = markdown_tables(text)["Test error (%)"]
    assert dict(zip(header, next(row for row in rows if row[0] == "Cutout")))[FASHION] == "15.00 (n=1)"


def test_paired_comparisons_against_none_and_random(smoke_runs, tmp_path):
    frame = paired_table(get_layout("table1"), read_runs(smoke_runs), "smoke", TABLE1_REFERENCES)
    relax = frame[(frame["column"] == "test error, DADA (RELAX)") & (frame["reference"] == "test error, no policy")]
    relax = relax.iloc[0]  # differences 17 - 20, 18 - 22: mean -3.5, sd 0.71, t = -7 on 1 degree of freedom
    assert (relax["row"], relax["n"], relax["seeds"]) == (FASHION, 2, "0,1")
    assert relax["mean_difference"] == pytest.approx(-3.5)
    assert relax["ci_half_width"] == pytest.approx(T_975_DF1 * math.sqrt(0.5) / math.sqrt(2))
    assert relax["p_value"] == pytest.approx(1 - 2 * math.atan(7) / math.pi)  # Cauchy tail: 0.0903
    assert set(frame["row"]) == {FASHION}  # CIFAR-10 has no reference runs; no self-comparisons
    assert not (frame["column"] == frame["reference"]).any()
    assert len(paired_table(get_layout("table1"), read_runs(smoke_runs), "smoke", TABLE1_REFERENCES, [0])) == 0

    path = write_table(
        "table1", read_runs(smoke_runs), Context("smoke", smoke_runs, tmp_path / "results", tmp_path / "data")
    )
    csv = pd.read_csv(tmp_path / "results" / "table1_smoke_paired.csv")
    assert len(csv) == len(frame) and set(csv["test"]) == {"paired t-test"}
    text = path.read_text()
    assert "paired t-test" in text
    header, rows = markdown_tables(text)[FASHION]
    assert header == ["Method", "Δ vs no policy [95 % CI], p", "Δ vs random policy [95 % CI], p"]
    by_method = {row[0]: row[1:] for row in rows}
    assert by_method["DADA (RELAX)"][0] == "-3.50 [-9.85, +2.85], p = 0.090, n = 2"
    assert by_method["random policy"][1] == "—"


def test_cli_names_files_after_any_planned_scale(tmp_path, monkeypatch):
    monkeypatch.setattr("analysis.__main__.SCALES", ("smoke", "mini", "paper"))
    results = tmp_path / "results"
    for scale in ("mini", "paper"):
        main(
            [
                "table1",
                "--scale",
                scale,
                "--runs",
                str(tmp_path / "runs"),
                "--results",
                str(results),
                "--data-root",
                str(tmp_path / "data"),
            ]
        )
    assert {"table1_mini.md", "table1_mini.csv", "table1_mini_paired.csv", "table1.md", "table1_paired.csv"} <= {
        path.name for path in results.iterdir()
    }
    title = (results / "table1_mini.md").read_text().splitlines()[0]
    assert "mini scale, REDUCED" in title
    assert "REDUCED" not in (results / "table1.md").read_text().splitlines()[0]
    with pytest.raises(SystemExit):
        main(["table1", "--scale", "huge", "--runs", str(tmp_path / "runs"), "--results", str(results)])


@pytest.mark.slow
def test_figures_are_written(smoke_runs, tmp_path, monkeypatch):
    monkeypatch.setattr("analysis.report.write_estimators_toy", lambda context: None)  # its own test covers it
    results = tmp_path / "results"
    write_results("figures", Context("smoke", smoke_runs, results, tmp_path / "data"))
    for name in (
        "fig1_smoke",
        "fig3a_smoke",
        "fig3b_smoke",
        "search_gradient_variance_smoke",
        "policy_search_fashion-mnist-on-wrn10_1_relax_seed0_smoke",  # smoke swaps in WRN-10-1
        "policy_search_fashion-mnist-on-wrn10_1_gumbel_seed0_smoke",
    ):
        assert (results / f"{name}.png").stat().st_size > 10_000, name


@pytest.mark.slow
def test_mlflow_reader_matches_folder_reader(tmp_path):
    from dada.tracking import create_tracker

    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    root = tmp_path / "runs"
    for variant, summary in (
        ("relax", search_summary(0.25, overlap={"seed1": 0.4})),
        ("none", train_summary(12.5, "none")),
    ):
        experiment = "search_fashion-mnist" if variant == "relax" else "table1_fashion-mnist_wrn40_2"
        tags = {
            "app": "search" if variant == "relax" else "train",
            "dataset": "fashion-mnist",
            "model": "wrn10_1",
            "estimator": "relax",
            "policy": "none",
        }
        with create_tracker(
            ("jsonl", "mlflow"), run_dir=root / "smoke" / experiment / variant / "seed0", tags=tags, mlflow_uri=uri
        ) as tracker:
            tracker.set_summary(summary)
    columns = [
        "scale",
        "experiment",
        "variant",
        "seed",
        "app",
        "status",
        "dataset",
        "model",
        "test_error_top1",
        "search_device_hours",
        "unit",
        "device_name",
        "top_overlap",
    ]
    folders, mlflow = read_runs(root), read_runs_mlflow(uri)
    pd.testing.assert_frame_equal(folders[columns].reset_index(drop=True), mlflow[columns].reset_index(drop=True))
    assert {"seed1": 0.4} in list(mlflow["top_overlap"])


def test_captions_say_when_runs_come_from_different_devices():
    from analysis.style import scale_caption

    one = pd.DataFrame({"device_name": ["Intel Xeon"] * 2, "unit": ["CPU-hours"] * 2, "model": ["wrn10_1"] * 2})
    two = pd.DataFrame({"device_name": ["Intel Xeon", "AMD EPYC"], "unit": ["CPU-hours"] * 2, "model": ["wrn10_1"] * 2})
    assert "MIXED" not in scale_caption("smoke", one)
    assert "MIXED: 2 devices" in scale_caption("smoke", two) and "AMD EPYC" in scale_caption("smoke", two)
