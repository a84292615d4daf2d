"""What each paper table and figure is made of: cells, each naming the paper's value and the run that gives ours.

A `Cell` is one number of a table: its row and column labels, the paper's value (`PaperRef` into
``analysis/paper_results.yaml``) and the job whose runs give ours (`SearchJob`, `EvalJob` or `DetectJob`, run once
per seed).
The runner (`reproduce.plan`) turns cells into runs; the analysis (``analysis.tables``) turns runs back into cells.
A cell with no job is a paper method dada does not ship (PBA, OHL AA): shown, never run. Fast AA runs its
released policies (``policy=fastaa``); its search is not run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

TEST_ERROR, TOP5_ERROR, SEARCH_COST = "test_error_top1", "test_error_top5", "search_device_hours"
TRAIN_ERROR = "train_error_top1"  # the final epoch's training error: shows whether a column overfits


@dataclass(frozen=True)
class SearchJob:
    """``python -m dada.search experiment=<experiment> estimator=<estimator> search.variant=<search_variant>``."""

    experiment: str
    estimator: str
    dataset: str  # the data set it reads, a ``dada.data`` name
    search_variant: str = "official"  # FIDELITY.md: the official code (the tables' default) or the paper's text

    app: ClassVar[str] = "search"

    @property
    def variant(self) -> str:
        """The run-folder name: the estimator, suffixed by a non-default search variant (relax-paper)."""
        return self.estimator if self.search_variant == "official" else f"{self.estimator}-{self.search_variant}"

    @property
    def overrides(self) -> tuple[str, ...]:
        return (f"estimator={self.estimator}", f"search.variant={self.search_variant}")


@dataclass(frozen=True)
class EvalJob:
    """``python -m dada.train experiment=<experiment> <overrides>``; a DADA column also reads a search's policy."""

    experiment: str
    column: str  # run-folder name of the column: none, cutout, autoaugment, random, dada-relax, ...
    dataset: str  # the data set it trains and tests on (svhn-extra for SVHN's train+extra)
    overrides: tuple[str, ...]
    search: SearchJob | None = None  # the search whose seed-matched policy.json it evaluates

    app: ClassVar[str] = "train"

    @property
    def variant(self) -> str:
        return self.column


@dataclass(frozen=True)
class DetectJob:
    """``python -m dada.detect experiment=<experiment> backbone.run=<the backbone's run folder>`` (Table 5)."""

    experiment: str
    dataset: str  # the detection data set, a ``dada.detect`` name: coco or fashion-mnist-detection
    backbone: EvalJob  # the ResNet-50 run whose seed-matched weights initialise the detector's backbone

    app: ClassVar[str] = "detect"
    overrides: ClassVar[tuple[str, ...]] = ()

    @property
    def variant(self) -> str:
        """The run-folder name: the backbone's column (none, dada-relax)."""
        return self.backbone.column


Job = SearchJob | EvalJob | DetectJob
APPS = ("search", "train", "detect")  # the order runs go in: each app's runs may need the previous app's


def stage(job_or_run) -> int:
    """Where a job (or a run) goes in a plan: searches, then evaluations, then detections."""
    return APPS.index(job_or_run.app)


@dataclass(frozen=True)
class PaperRef:
    """A cell of ``analysis/paper_results.yaml``."""

    table: str
    row: str
    column: str


@dataclass(frozen=True)
class Cell:
    """One number of a table: where it sits, which summary field it is, the paper's value and our job."""

    row: str
    column: str
    metric: str  # the summary field: test_error_top1, test_error_top5, search_device_hours, or an AP (Table 5)
    job: Job | None
    paper: PaperRef | None = None
    note: str = ""  # why a cell has no job


@dataclass(frozen=True)
class Layout:
    """One target: its title, what its values are, and its cells in display order."""

    name: str
    title: str
    quantity: str
    cells: tuple[Cell, ...]
    heading: str = "Test error (%)"  # the results' section heading
    seeds: tuple[int, ...] = (0, 1, 2)  # the seeds `make <target>` runs and reports unless told others
    note: str = ""  # what the results say under the title, besides the scale's note
    extras: tuple[str, ...] = ()  # what the results add: "paired" comparisons on the same seeds, the "cost" report

    def __repr__(self) -> str:
        return f"Layout(name={self.name!r}, cells={len(self.cells)}, jobs={len(jobs(self))})"


def needed(job: Job) -> list[Job]:
    """The job and the jobs whose runs it reads, each before the jobs that read it."""
    if isinstance(job, DetectJob):
        return [*needed(job.backbone), job]
    if isinstance(job, EvalJob) and job.search is not None:
        return [job.search, job]
    return [job]


def jobs(layout: Layout) -> list[Job]:
    """The distinct jobs of a layout, searches before the evaluations that read their policies, and evaluations
    before the detections that read their weights."""
    found = {}
    for cell in layout.cells:
        if cell.job is not None:
            found.update(dict.fromkeys(needed(cell.job)))
    return sorted(found, key=stage)


# -- the searches (conf/experiment/search_*.yaml) ------------------------------------------------------------------


def _search(dataset: str, estimator: str = "relax", full: bool = False, variant: str = "official") -> SearchJob:
    name = f"search_{dataset}" + ("-full" if full else "")  # a full search's size at smoke: conf/reproduce/smoke.yaml
    return SearchJob(name, estimator, dataset, variant)


# -- the evaluation columns ----------------------------------------------------------------------------------------


def _eval(experiment: str, dataset: str, column: str, search: SearchJob | None = None) -> EvalJob:
    """Column ``dada-relax`` runs ``policy=dada``; the runner adds ``policy.source`` from the search."""
    return EvalJob(experiment, column, dataset, (f"policy={column.split('-')[0]}",), search)


def _paper(table: str, row: str | None, column: str) -> PaperRef | None:
    """The paper's cell, or None for a row the paper does not have (the embedded Fashion-MNIST)."""
    return None if row is None else PaperRef(table, row, column)


_NOT_SHIPPED = "not reproduced: dada ships no {} policy"
# Paper column label -> our column key; None: a method we cannot run.
METHOD_COLUMNS = {
    "Baseline": "none",
    "Cutout": "cutout",
    "AA": "autoaugment",
    "PBA": None,
    "Fast AA": "fastaa",
    "OHL AA": None,
    "DADA": "dada-relax",
}


def _method_cells(
    paper_table: str,
    row: str,
    experiment: str,
    dataset: str,
    search: SearchJob,
    methods: tuple[str, ...],
    metric: str = TEST_ERROR,
) -> list[Cell]:
    """One row of Tables 2-4: the paper's methods, ours where dada can run them."""
    cells = []
    for method in methods:
        column = METHOD_COLUMNS[method]
        paper = PaperRef(paper_table, row, method)
        if column is None:
            cells.append(Cell(row, method, metric, None, paper, _NOT_SHIPPED.format(method)))
        else:
            job = _eval(experiment, dataset, column, search if column.startswith("dada") else None)
            cells.append(Cell(row, method, metric, job, paper))
    return cells


# -- Table 1: search cost and test error per data set ------------------------------------------------------------

EMBEDDED = "Fashion-MNIST (embedded, not in the paper)"
# (row label, the paper's row or None, search data set, evaluation experiment, evaluation data set)
TABLE1_ROWS = (
    (EMBEDDED, None, "fashion-mnist", "table1_fashion-mnist_wrn40_2", "fashion-mnist"),
    ("CIFAR-10", "CIFAR-10", "cifar10", "table2_cifar10_wrn28_10", "cifar10"),
    ("CIFAR-100", "CIFAR-100", "cifar100", "table2_cifar100_wrn28_10", "cifar100"),
    ("SVHN", "SVHN", "svhn", "table3_svhn_wrn28_10", "svhn-extra"),
    ("ImageNet", "ImageNet", "imagenet", "table4_imagenet_resnet50", "imagenet"),
)


# Table 1's evaluation columns besides DADA's: (column label, policy, the paper's Table 1(b) column or None).
# The paper's Table 1(b) has AA, PBA, Fast AA, OHL AA and DADA; no policy, Cutout, a random policy, RandAugment
# and TrivialAugment are the baselines a reader of this line of work asks for (TrivialAugment, Müller & Hutter
# 2021, found random policies as good as searched ones).
TABLE1_BASELINES = (
    ("no policy", "none", None),
    ("Cutout", "cutout", None),
    ("random policy", "random", None),
    ("AA", "autoaugment", "AA"),
    ("RandAugment", "randaugment", None),
    ("TrivialAugment", "trivialaugment", None),
    ("Fast AA", "fastaa", "Fast AA"),
)


def _table1_row(row: str, paper_row: str | None, search_dataset: str, experiment: str, dataset: str) -> list[Cell]:
    relax, gumbel = _search(search_dataset, "relax"), _search(search_dataset, "gumbel")
    relax_paper = _search(search_dataset, "relax", variant="paper")
    cells = [
        Cell(row, "search cost, RELAX", SEARCH_COST, relax, _paper("table1a", paper_row, "DADA")),
        Cell(row, "search cost, Gumbel", SEARCH_COST, gumbel),
        Cell(row, "search cost, RELAX (paper variant)", SEARCH_COST, relax_paper),
    ]
    cells += [
        Cell(
            row,
            f"test error, {label}",
            TEST_ERROR,
            _eval(experiment, dataset, column),
            _paper("table1b", paper_row, paper_column) if paper_column else None,
        )
        for label, column, paper_column in TABLE1_BASELINES
    ]
    return cells + [
        Cell(row, "test error, DADA (Gumbel)", TEST_ERROR, _eval(experiment, dataset, "dada-gumbel", gumbel)),
        Cell(
            row,
            "test error, DADA (RELAX)",
            TEST_ERROR,
            _eval(experiment, dataset, "dada-relax", relax),
            _paper("table1b", paper_row, "DADA"),
        ),
        Cell(
            row,
            "test error, DADA (RELAX, paper variant)",
            TEST_ERROR,
            _eval(experiment, dataset, "dada-relax-paper", relax_paper),
        ),
        Cell(row, "train error, no policy", TRAIN_ERROR, _eval(experiment, dataset, "none")),
    ]


def table1() -> Layout:
    cells = [cell for row in TABLE1_ROWS for cell in _table1_row(*row)]
    return Layout(
        "table1",
        "Table 1: policy search cost and test error per data set",
        "search cost in device-hours; test error in %",
        tuple(cells),
        extras=("paired", "cost"),
    )


# -- Tables 2 and 3: test error across models ---------------------------------------------------------------------

MODEL_LABELS = {
    "wrn40_2": "Wide-ResNet-40-2",
    "wrn28_10": "Wide-ResNet-28-10",
    "shakeshake26_2x32d": "Shake-Shake(26 2x32d)",
    "shakeshake26_2x96d": "Shake-Shake(26 2x96d)",
    "shakeshake26_2x112d": "Shake-Shake(26 2x112d)",
    "pyramidnet272_a200_shakedrop": "PyramidNet+ShakeDrop",
}
DATASET_LABELS = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "svhn": "SVHN"}
TABLE2_MODELS = {
    "cifar10": (
        "wrn40_2",
        "wrn28_10",
        "shakeshake26_2x32d",
        "shakeshake26_2x96d",
        "shakeshake26_2x112d",
        "pyramidnet272_a200_shakedrop",
    ),
    "cifar100": ("wrn40_2", "wrn28_10", "shakeshake26_2x96d", "pyramidnet272_a200_shakedrop"),
}
TABLE3_MODELS = ("wrn28_10", "shakeshake26_2x96d")
METHODS = ("Baseline", "Cutout", "AA", "PBA", "Fast AA", "DADA")


def _across_models(table: str, dataset: str, models: tuple[str, ...], eval_dataset: str) -> list[Cell]:
    cells = []
    for model in models:
        row = f"{DATASET_LABELS[dataset]} / {MODEL_LABELS[model]}"
        cells += _method_cells(table, row, f"{table}_{dataset}_{model}", eval_dataset, _search(dataset), METHODS)
    return cells


def table2() -> Layout:
    cells = [
        cell for dataset, models in TABLE2_MODELS.items() for cell in _across_models("table2", dataset, models, dataset)
    ]
    return Layout("table2", "Table 2: CIFAR-10 and CIFAR-100 test error", "test error in %", tuple(cells))


def table3() -> Layout:
    cells = _across_models("table3", "svhn", TABLE3_MODELS, "svhn-extra")
    return Layout("table3", "Table 3: SVHN test error", "test error in %", tuple(cells))


# -- Table 4: ImageNet -------------------------------------------------------------------------------------------


def table4() -> Layout:
    experiment, search = "table4_imagenet_resnet50", _search("imagenet")
    methods = ("Baseline", "AA", "Fast AA", "OHL AA", "DADA")
    cells = _method_cells("table4", "Top-1 error (%)", experiment, "imagenet", search, methods)
    cells += _method_cells("table4", "Top-5 error (%)", experiment, "imagenet", search, methods, TOP5_ERROR)
    cells.append(Cell("Search time (h)", "DADA", SEARCH_COST, search, PaperRef("table4", "Search time (h)", "DADA")))
    return Layout(
        "table4",
        "Table 4: ImageNet (ResNet-50) top-1 / top-5 error and search time",
        "error in %; search time in device-hours",
        tuple(cells),
    )


# -- Table 5: COCO detection with ResNet-50 backbones trained without and with the DADA policy ----------------------

# The paper's columns: box AP at IoU 0.50:0.95, at 0.50 and 0.75, on small, medium and large objects; mask AP.
TABLE5_METRICS = (
    ("APbb", "ap_bbox"),
    ("APbb50", "ap50_bbox"),
    ("APbb75", "ap75_bbox"),
    ("APbbS", "aps_bbox"),
    ("APbbM", "apm_bbox"),
    ("APbbL", "apl_bbox"),
    ("APmask", "ap_mask"),
)
TABLE5_DETECTORS = (("RetinaNet", "retinanet"), ("Faster R-CNN", "faster_rcnn"), ("Mask R-CNN", "mask_rcnn"))
TABLE5_BACKBONES = (("baseline", "none"), ("DADA", "dada-relax"))
EMBEDDED_DETECTION = "embedded set"
# (detection data set, the backbones' experiment, their data set (their DADA search's too), whether the paper has it)
TABLE5_DATASETS = (
    ("coco", "table4_imagenet_resnet50", "imagenet", True),
    ("fashion-mnist-detection", "table5_fashion-mnist_resnet50", "fashion-mnist", False),
)


def _backbone(experiment: str, dataset: str, column: str) -> EvalJob:
    """Table 4's evaluation for the COCO rows; the embedded rows' own ResNet-50 (smaller at smoke scale:
    conf/reproduce/smoke.yaml)."""
    search = _search(dataset) if column.startswith("dada") else None
    return EvalJob(experiment, column, dataset, (f"policy={column.split('-')[0]}",), search)


TABLE5_NOTE = (
    "COCO rows: each detector fine-tuned on COCO 2017 train from Table 4's ResNet-50 runs (baseline: policy none; "
    "DADA: the policy of our ImageNet search), MMDetection's 1x schedule (conf/detect_schedule/1x.yaml), AP on val2017 "
    "(the paper's is on test-dev). Embedded rows (not in the paper): the same code path on the embedded detection set, "
    "Fashion-MNIST items pasted onto 128x128 canvases and written in COCO's format (dada/detect/embedded.py), from "
    "ResNet-50s trained on Fashion-MNIST (DADA: the policy of our Fashion-MNIST search); it holds no large object, "
    "so it has no APbbL."
    " At smoke scale the backbones and the detectors train for a few dozen steps: a check of the pipeline, far "
    "from converged; a detector that scores no box above its threshold gets AP 0."
)


def table5() -> Layout:
    """Methods as rows, the AP columns as columns (the layout's rows are the AP columns; the markdown pivots)."""
    cells = []
    for dataset, experiment, backbone_dataset, paper in TABLE5_DATASETS:
        for detector_label, detector in TABLE5_DETECTORS:
            for backbone_label, column in TABLE5_BACKBONES:
                backbone = _backbone(experiment, backbone_dataset, column)
                job = DetectJob(f"table5_{dataset}_{detector}", dataset, backbone)
                method = f"{detector_label} ResNet-50 ({backbone_label})"
                label = method if paper else f"{method}, {EMBEDDED_DETECTION}"
                for metric_label, metric in TABLE5_METRICS:
                    if metric == "ap_mask" and detector != "mask_rcnn":
                        continue  # box-only detectors: "-" in the paper
                    if metric == "apl_bbox" and not paper:
                        continue  # the embedded set's 128-pixel canvases hold no large object
                    reference = PaperRef("table5", method, metric_label) if paper else None
                    cells.append(Cell(metric_label, label, metric, job, reference))
    return Layout(
        "table5",
        "Table 5: object detection box (bb) and mask AP with ResNet-50 backbones trained without and with DADA",
        "COCO AP in %",
        tuple(cells),
        "Box and mask AP (%)",
        seeds=(0,),  # the paper's Table 5 reports single runs
        note=TABLE5_NOTE,
    )


# -- Table 6: search on the reduced vs the full training set -----------------------------------------------------

# (row label, the paper's row or None, data set, evaluation experiment); the search uses WRN-40-2 throughout
TABLE6_ROWS = (
    (
        "Fashion-MNIST / Wide-ResNet-40-2 (embedded, not in the paper)",
        None,
        "fashion-mnist",
        "table1_fashion-mnist_wrn40_2",
    ),
    ("CIFAR-10 / Wide-ResNet-40-2", "CIFAR-10 / Wide-ResNet-40-2", "cifar10", "table2_cifar10_wrn40_2"),
    ("CIFAR-10 / Wide-ResNet-28-10", "CIFAR-10 / Wide-ResNet-28-10", "cifar10", "table2_cifar10_wrn28_10"),
)


def _table6_row(row: str, paper_row: str | None, dataset: str, experiment: str) -> list[Cell]:
    reduced, full = _search(dataset), _search(dataset, full=True)
    return [
        Cell(row, "search cost, reduced", SEARCH_COST, reduced),
        Cell(row, "search cost, full", SEARCH_COST, full),
        Cell(
            row,
            "Reduced",
            TEST_ERROR,
            _eval(experiment, dataset, "dada-relax", reduced),
            _paper("table6", paper_row, "Reduced CIFAR-10"),
        ),
        Cell(
            row,
            "Full",
            TEST_ERROR,
            _eval(experiment, dataset, "dada-full", full),
            _paper("table6", paper_row, "Full CIFAR-10"),
        ),
    ]


def table6() -> Layout:
    cells = [cell for row in TABLE6_ROWS for cell in _table6_row(*row)]
    return Layout(
        "table6",
        "Table 6: DADA policy searched on the reduced vs the full training set",
        "test error in %; search cost in device-hours",
        tuple(cells),
    )


# -- the figures: which cells each one draws ---------------------------------------------------------------------


def fig1() -> Layout:
    """Test error vs search cost: Table 1's rows, searched with RELAX (the paper's DADA) and with Gumbel, and
    the error of Fast AA's released policy on the same rows (no cost of ours: its search is not run)."""
    keep = ("search cost, RELAX", "test error, DADA (RELAX)", "search cost, Gumbel", "test error, DADA (Gumbel)")
    cells = [cell for cell in table1().cells if cell.column in keep]
    cells += [
        Cell(
            row,
            "test error, Fast AA",
            TEST_ERROR,
            _eval(experiment, dataset, "fastaa"),
            _paper("table1b", paper_row, "Fast AA"),
        )
        for row, paper_row, _, experiment, dataset in TABLE1_ROWS
    ]
    return Layout(
        "fig1", "Fig. 1: test error vs policy search cost", "device-hours (log) vs test error in %", tuple(cells)
    )


def fig3a() -> Layout:
    """Gumbel-Softmax vs RELAX: the two DADA columns of Table 1 (CIFAR-10 in the paper)."""
    keep = ("test error, DADA (Gumbel)", "test error, DADA (RELAX)")
    cells = [cell for cell in table1().cells if cell.column in keep and cell.row in (EMBEDDED, "CIFAR-10")]
    return Layout("fig3a", "Fig. 3a: Gumbel-Softmax vs RELAX estimator", "test error in %", tuple(cells))


def fig3b() -> Layout:
    """Speed/accuracy trade-off with WRN-40-2: Table 6's WRN-40-2 rows."""
    cells = [cell for cell in table6().cells if "Wide-ResNet-40-2" in cell.row]
    return Layout(
        "fig3b", "Fig. 3b: speed/accuracy trade-off (WRN-40-2)", "device-hours (log) vs test error in %", tuple(cells)
    )


LAYOUTS = {
    "table1": table1,
    "table2": table2,
    "table3": table3,
    "table4": table4,
    "table5": table5,
    "table6": table6,
    "fig1": fig1,
    "fig3a": fig3a,
    "fig3b": fig3b,
}


def get_layout(name: str) -> Layout:
    """The layout of a table or figure; ValueError naming the valid ones otherwise."""
    if name not in LAYOUTS:
        raise ValueError(f"unknown table or figure {name!r}; valid choices: {', '.join(LAYOUTS)}")
    return LAYOUTS[name]()
