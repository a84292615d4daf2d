"""Bad inputs and faults from issue 12's probe, one row per case: each fails loudly with a clear message.

A row's id starts with the case number in the issue. ``run`` feeds the bad input; the row asserts the exception
(or warning) type, or the exit code of an app run as a process, a phrase of its message and, where a file is at
fault, that the message names it. A fault that is now handled without an error (resume, a sibling's file) has
no exception: its ``run`` returns a line saying what happened, which the phrase must match.
"""

import argparse
import gzip
import json
import os
import pickle
import re
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
import yaml
from conftest import SEARCH_SMOKE, compose_config, write_image_folder
from test_security import plant_checkpoint, plant_cifar_root

from analysis.paper import load_paper_results
from analysis.runs import read_epoch_metrics
from dada import checkpoint, data, ops
from dada.config import ConfigValueError
from dada.data._errors import CorruptDataError, UnsafeDataError
from dada.data.fashion_mnist import RAW_FILES, raw_folder, read_fashion_mnist
from dada.policy import Policy, load_named
from dada.runtime import RunLockedError, RunMismatchError, finished_summary, refuse_non_finite, run_lock
from dada.search.loop import SearchRun, top_overlap
from dada.search.space import SearchSpace
from dada.tracking import TrackingWarning, create_tracker
from dada.train import TrainRun
from reproduce.cli import parse_seeds

IDX_HEADER = b"\x00\x00\x08\x01" + (3).to_bytes(4, "big")  # a uint8 IDX vector of 3 entries
RANGE = r"must lie in \[0, 1\]"
REPOSITORY = Path(__file__).resolve().parents[1]
TINY_TRAIN = [
    "device=cpu",
    "scale.train_images=32",
    "scale.test_images=32",
    "scale.train_epochs=1",
    "scale.batch_size=32",
    "policy=none",
    "num_workers=0",
]


@dataclass(frozen=True)
class Case:
    id: str
    run: Callable[[Path], object]  # feeds the bad input under a temporary folder
    raises: type[BaseException] | type[Warning] | int | None  # an int: the exit code; None: no error
    phrase: str  # a regular expression the message must match
    names_file: bool = False  # the message names a file under the temporary folder
    slow: bool = False  # runs a process, a search step or an MLflow store


def _search(tmp_path: Path, *overrides: str) -> SearchRun:
    """A smoke search of one step per epoch writing ``tmp_path/run``."""
    return SearchRun(
        compose_config("search", [*SEARCH_SMOKE, f"run_dir={tmp_path / 'run'}", "scale.search_images=64", *overrides])
    )


def _train(tmp_path: Path, *overrides: str) -> TrainRun:
    """A one-step evaluation writing ``tmp_path/run``."""
    return TrainRun(compose_config("train", [*TINY_TRAIN, f"run_dir={tmp_path / 'run'}", *overrides]))


def _app(app: str, *overrides: str) -> subprocess.CompletedProcess:
    """``python -m dada.<app> overrides`` as a user runs it, from the repository."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "1"}
    return subprocess.run(
        [sys.executable, "-m", f"dada.{app}", *overrides],
        cwd=REPOSITORY,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


# -- 3: NaN or Inf that the losses before an update do not show ----------------------------------------------------


def _nothing_saved_after(run: Callable[[], object], run_dir: Path, *files: str):
    """``run()``, then check that none of ``files`` was written and that the run ended FAILED."""
    try:
        run()
    finally:
        assert not [name for name in files if (run_dir / name).exists()]
        assert json.loads((run_dir / "summary.json").read_text())["status"] == "FAILED"


def _train_blown_up_by_the_lr(tmp_path: Path):
    _nothing_saved_after(_train(tmp_path, "recipe.lr=1e6").run, tmp_path / "run", "checkpoint.pt")


def _search_with_infinite_batch_norm_statistics(tmp_path: Path):
    run = _search(tmp_path)
    norm = next(module for module in run.model.modules() if isinstance(module, torch.nn.BatchNorm2d))
    norm.running_var.fill_(float("inf"))  # train-mode losses stay finite; the weights to save are not
    _nothing_saved_after(run.run, tmp_path / "run", "checkpoint.pt", "policy.json")


# -- 4: a finished or resumed run with other settings --------------------------------------------------------------


def _plant_run(run_dir: Path, kind: str, identity: dict, finished: bool) -> None:
    checkpoint.save_atomic({"kind": kind, "identity": identity, "epoch": 0}, run_dir / "checkpoint.pt")
    if finished:
        (run_dir / "summary.json").write_text(json.dumps({"status": "FINISHED"}))


def _finished_search_rerun_with_another_lr(tmp_path: Path):
    _plant_run(tmp_path / "run", "search", _search(tmp_path).identity, finished=True)
    _search(tmp_path, "search.lr=0.2").run()


def _search_resumed_with_other_epochs(tmp_path: Path):
    _plant_run(tmp_path / "run", "search", _search(tmp_path).identity, finished=False)
    _search(tmp_path, "scale.search_epochs=5").run()


def _train_resumed_with_another_lr(tmp_path: Path):
    _plant_run(tmp_path / "run", "train", _train(tmp_path).identity, finished=False)
    _train(tmp_path, "recipe.lr=0.2").run()


def _finished_search_rerun_by_the_app(tmp_path: Path):
    """The app leaves a finished run's Hydra record alone, re-run as it was (a no-op) or with another lr (refused)."""
    run_dir, overrides = tmp_path / "run", [*SEARCH_SMOKE, f"run_dir={tmp_path / 'run'}"]
    _plant_run(run_dir, "search", SearchRun(compose_config("search", overrides)).identity, finished=True)
    record = {name: f"the record of the run: {name}\n" for name in ("config.yaml", "overrides.yaml", "hydra.yaml")}
    (run_dir / ".hydra").mkdir()
    for name, text in record.items():
        (run_dir / ".hydra" / name).write_text(text)
    same = _app("search", *overrides)
    assert same.returncode == 0 and "nothing to do" in same.stdout + same.stderr, same.stderr[-2000:]
    changed = _app("search", *overrides, "search.lr=0.2")
    assert {name: (run_dir / ".hydra" / name).read_text() for name in record} == record
    return changed


# -- 9: unreadable policy files -------------------------------------------------------------------------------------


def _load_policy_file(tmp_path: Path, content: bytes):
    (tmp_path / "policy.json").write_bytes(content)
    Policy.load(tmp_path / "policy.json")


# -- 10: a checkpoint of another kind ------------------------------------------------------------------------------


def _plant_file(tmp_path: Path, save: Callable[[Path], object]) -> Path:
    path = tmp_path / "run" / "checkpoint.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    save(path)
    return path


def _search_checkpoint_given_to_train(tmp_path: Path):
    space = SearchSpace().state_dict()  # as the search saved it before checkpoints said their kind
    _plant_file(tmp_path, lambda path: checkpoint.save_atomic({"epoch": 0, "space": space}, path))
    _train(tmp_path).run()


def _train_checkpoint_given_to_search(tmp_path: Path):
    _plant_file(tmp_path, lambda path: checkpoint.save_atomic({"kind": "train", "epoch": 0}, path))
    _search(tmp_path).run()


def _checkpoint_of_another_estimator(tmp_path: Path):
    _plant_run(tmp_path / "run", "search", _search(tmp_path, "estimator=relax").identity, finished=False)
    _search(tmp_path, "estimator=gumbel").run()


def _old_checkpoint_of_another_estimator(tmp_path: Path):
    """A checkpoint written before they held their settings: the state that does not fit is named."""
    state = _search(tmp_path, "estimator=relax").state(0)
    del state["identity"], state["kind"]
    checkpoint.save_atomic(state, tmp_path / "run" / "checkpoint.pt")
    _search(tmp_path, "estimator=gumbel").run()


# -- 13: a sibling seed's unreadable policy -------------------------------------------------------------------------


def _truncated_sibling_policy(tmp_path: Path) -> None:
    policy = load_named("cifar10")
    policy.save(tmp_path / "seed1" / "policy.json")
    text = policy.save(tmp_path / "seed0" / "policy.json").read_text()
    (tmp_path / "seed0" / "policy.json").write_text(text[: len(text) // 2])
    assert top_overlap(tmp_path / "seed2", policy) == {"seed1": 1.0}


# -- 14: two processes on one run folder ----------------------------------------------------------------------------

HOLD_LOCK = (
    "import sys, time\nfrom dada.runtime import run_lock\nwith run_lock(sys.argv[1]):\n"
    "    print('locked', flush=True)\n    time.sleep(300)\n"
)


def _names_the_holder(run: Callable[[], object], pid: int):
    try:
        run()
    except RunLockedError as error:
        assert f"in use by process {pid}," in str(error), str(error)
        raise


def _run_folder_locked_in_this_process(tmp_path: Path):
    try:
        with run_lock(tmp_path / "run"):
            _names_the_holder(_train(tmp_path).run, os.getpid())
    finally:
        with run_lock(tmp_path / "run"):  # released: a later run takes it
            pass


def _run_folder_locked_by_another_process(tmp_path: Path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(tmp_path / "run")], cwd=REPOSITORY, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        _names_the_holder(_search(tmp_path).run, holder.pid)
    finally:
        holder.kill()
        holder.wait()


# -- 15: records and tracker runs across a resume -------------------------------------------------------------------


def _log_steps(tracker, epoch: int, end: bool = True) -> None:
    """Epoch ``epoch`` (from 0) as the apps log it: step records at steps 4e and 4e+2, then the epoch record."""
    for step in (4 * epoch, 4 * epoch + 2):
        tracker.log_metrics({"loss": 1.0}, step=step)
    if end:
        tracker.log_metrics({"epoch": epoch + 1}, step=4 * epoch + 4)


def _killed_after(tmp_path: Path, epochs: int, **options):
    """A tracker that logged ``epochs`` epochs and the steps of the next, then was killed: never closed."""
    tracker = create_tracker(run_dir=tmp_path / "run", **options)
    for epoch in range(epochs):
        _log_steps(tracker, epoch)
    _log_steps(tracker, epochs, end=False)
    return tracker


def _records_after_a_resume(tmp_path: Path) -> str:
    """Killed in epoch 3 after the checkpoint of epoch 2 (its record written, as the apps write it before saving)."""
    _killed_after(tmp_path, epochs=2)
    with create_tracker(run_dir=tmp_path / "run", resume_epoch=2) as tracker:
        _log_steps(tracker, 2)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    return "records " + " ".join(f"e{r['epoch']:.0f}@{r['step']}" if "epoch" in r else str(r["step"]) for r in records)


def _epochs_read_once(tmp_path: Path) -> str:
    lines = [{"step": 4, "epoch": 1, "loss": 2.0}, {"step": 4, "epoch": 1, "loss": 1.0}, {"step": 8, "epoch": 2}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    epochs = read_epoch_metrics(tmp_path)
    return f"epochs {epochs['epoch'].tolist()}, loss of epoch 1 {epochs['loss'].iloc[0]}"


def _one_mlflow_run_across_a_resume(tmp_path: Path) -> str:
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    first = _killed_after(tmp_path, epochs=1, backends=("jsonl", "mlflow"), mlflow_uri=uri, experiment="resume")
    with create_tracker(
        ("jsonl", "mlflow"), run_dir=tmp_path / "run", mlflow_uri=uri, experiment="resume", resume_epoch=1
    ) as resumed:
        _log_steps(resumed, 1)
    assert first._backends[0].run_id == resumed._backends[0].run_id
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("resume").experiment_id])
    return f"{len(runs)} MLflow run(s): {', '.join(run.info.status for run in runs)}"


def _one_wandb_run_id_across_a_resume(tmp_path: Path) -> str:
    first = _killed_after(tmp_path, epochs=1, backends=("wandb",))
    first_id = first._backends[0].run.id
    first._backends[0].run.finish(exit_code=1)  # what a kill leaves: W&B's service ends the run
    with create_tracker(("wandb",), run_dir=tmp_path / "run", resume_epoch=1) as resumed:
        resumed_id = resumed._backends[0].run.id
    recorded = json.loads((tmp_path / "run" / "tracking_ids.json").read_text())["wandb"]["run_id"]
    return f"run ids {'equal' if first_id == resumed_id == recorded else 'differ'}"


# -- 7: a corrupt image in a folder data set ---------------------------------------------------------------------


def _folder_with_a_corrupt_image(tmp_path: Path):
    write_image_folder(tmp_path / "train", ["cat", "dog"], per_class=2)
    (tmp_path / "train" / "dog" / "1.png").write_bytes(b"not a png")
    return data.load_image_folder("folder", tmp_path, train=True)


def _decode_corrupt_image(tmp_path: Path):
    data.decode_images(_folder_with_a_corrupt_image(tmp_path), torch.arange(4), image_size=4)


def _read_corrupt_image(tmp_path: Path):
    _folder_with_a_corrupt_image(tmp_path)[3]  # the evaluation's DataLoader path


# -- 8: a corrupt Fashion-MNIST file -----------------------------------------------------------------------------


def _fashion_from_sources(tmp_path: Path, compressed: bytes):
    source = tmp_path / "fashion-mnist"
    source.mkdir()
    for name in RAW_FILES:
        (source / f"{name}.gz").write_bytes(compressed)
    read_fashion_mnist(tmp_path / "cache", train=False, source_dir=source)


def _truncated_fashion_gz(tmp_path: Path):
    _fashion_from_sources(tmp_path, gzip.compress(IDX_HEADER + b"abc")[:-6])


def _fashion_gz_of_a_truncated_file(tmp_path: Path):
    _fashion_from_sources(tmp_path, gzip.compress(IDX_HEADER + b"ab"))


def _corrupt_fashion_cache(tmp_path: Path):
    raw = raw_folder(tmp_path / "cache")
    raw.mkdir(parents=True)
    for name in RAW_FILES:
        (raw / name).write_bytes(b"garbage")
    read_fashion_mnist(tmp_path / "cache", train=False, source_dir=tmp_path / "absent")


# -- 12: an unreachable MLflow server ----------------------------------------------------------------------------


def _unreachable_mlflow_server(tmp_path: Path):
    import mlflow  # noqa: F401  (imported first, so the clock measures only the connect)

    started = time.monotonic()
    try:
        with create_tracker(("jsonl", "mlflow"), run_dir=tmp_path / "run", mlflow_uri="http://127.0.0.1:9") as tracker:
            assert time.monotonic() - started < 10 and tracker.backends == ["jsonl"]
            tracker.log_metrics({"loss": 1.0}, step=1)
    finally:
        assert (tmp_path / "run" / "metrics.jsonl").read_text().count('"loss"') == 1


# -- 17: images outside [0, 1] -----------------------------------------------------------------------------------


def _images(fill: float) -> torch.Tensor:
    images = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    images[1, 0, 0, 0] = fill
    return images


def _apply_batch(images: torch.Tensor):
    load_named("cifar10").apply_batch(images, torch.Generator().manual_seed(0))


# -- 18 and 19: files that would run code ------------------------------------------------------------------------


def _refused_unrun(load: Callable[[Path, Path], object]) -> Callable[[Path], None]:
    """``load(tmp_path, marker)``, then check that the payload did not create ``marker``."""

    def run(tmp_path: Path):
        try:
            load(tmp_path, tmp_path / "marker")
        finally:
            assert not (tmp_path / "marker").exists(), "the payload ran"

    return run


def _truncated_checkpoint(tmp_path: Path):
    path = tmp_path / "run" / "checkpoint.pt"
    checkpoint.save_atomic({"model": {"weight": torch.ones(64)}}, path)
    path.write_bytes(path.read_bytes()[:200])
    checkpoint.load(path)


def _garbage_cifar_batch(tmp_path: Path):
    plant_cifar_root(tmp_path, tmp_path / "marker")
    (tmp_path / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"\x80\x04garbage")
    data.load_images("cifar10", tmp_path, train=True)


def _yaml_with_a_python_tag(tmp_path: Path):
    marker = tmp_path / "marker"
    (tmp_path / "tables.yaml").write_text(f"table1: !!python/object/apply:os.system ['touch {marker}']\n")
    try:
        load_paper_results(tmp_path / "tables.yaml")
    finally:
        assert not marker.exists(), "the payload ran"


# -- 23: settings out of range, files read from run folders and data roots, data-set invariants ---------------------


def _detect_config(*overrides: str):
    from dada.detect._config import validate

    validate(compose_config("detect", ["backbone.run=unused", *overrides]))


def _search_network_step_with_grad_clip_zero(_) -> str:
    """grad_clip=0 means no clipping in the search, as in train and detect (it zeroed the gradients)."""
    from dada.search.bilevel import BiLevelOptimizer

    step = BiLevelOptimizer.__new__(BiLevelOptimizer)
    step.model = torch.nn.Linear(2, 1, bias=False)
    torch.nn.init.zeros_(step.model.weight)
    step.network_optimizer, step.grad_clip = torch.optim.SGD(step.model.parameters(), lr=1.0), 0.0
    step._network_step((torch.full((1, 2), 10.0),))
    return f"weights {step.model.weight.flatten().tolist()}"


def _resumed_under_other_threads(tmp_path: Path):
    _plant_run(tmp_path / "run", "search", _search(tmp_path, "threads=1").identity, finished=False)
    _search(tmp_path, "threads=2").run()


def _finished_run_under_other_threads(tmp_path: Path) -> str:
    """A finished run re-run under another thread count is a no-op: nothing is resumed, its record stands."""
    _plant_run(tmp_path / "run", "search", _search(tmp_path, "threads=1").identity, finished=True)
    return f"status {_search(tmp_path, 'threads=2').run()['status']}"


def _plant_summary(run_dir: Path, text: str) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "summary.json").write_text(text)
    return run_dir


def _bad_summaries(tmp_path: Path) -> Path:
    """A runs root with one finished search and a truncated summary beside it."""
    runs = tmp_path / "runs"
    good = _plant_summary(runs / "smoke" / "search_x" / "relax" / "seed0", "{}")
    summary = {"status": "FINISHED", "app": "search", "name": "s", "seed": 0, "dataset": "d", "model": "m"}
    summary |= {"scale": "smoke", "epochs": 1, "estimator": "relax", "variant": "official", "policy": "p"}
    summary |= {"search_seconds": 1.0}
    (good / "summary.json").write_text(json.dumps(summary))
    _plant_summary(runs / "smoke" / "search_x" / "relax" / "seed1", '{"status": "FINI')
    return runs


def _analysis_reads_around_bad_summaries(tmp_path: Path) -> str:
    from analysis.runs import read_runs, runs_listing

    runs = read_runs(_bad_summaries(tmp_path))
    return f"{len(runs)} run(s) read: {runs_listing(runs).splitlines()[0]}"


def _reproduce_skips_a_bad_summary(tmp_path: Path) -> str:
    from reproduce.plan import plan
    from reproduce.runner import skip_reason

    run = plan("table1", "smoke", (0,), tmp_path / "runs")[0]
    _plant_summary(run.run_dir, "[1, 2]")
    return skip_reason(run, tmp_path / "data")


def _analysis_over_a_measured_table(tmp_path: Path):
    from analysis.report import Context, write_table

    measured = (REPOSITORY / "results" / "table1_smoke.csv").read_text()
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "table1_smoke.csv").write_text(measured)
    try:
        write_table("table1", read_runs_of(tmp_path / "runs"), Context(results_dir=tmp_path / "results", seeds=[7]))
    finally:
        assert (tmp_path / "results" / "table1_smoke.csv").read_text() == measured
        assert sorted(path.name for path in (tmp_path / "results").iterdir()) == ["table1_smoke.csv"]


def read_runs_of(root: Path):
    from analysis.runs import read_runs

    return read_runs(root)


def _backbone_run(tmp_path: Path, config: str | None) -> Path:
    """A finished train run of resnet50 as the detection app reads it, with ``config`` as its config.yaml."""
    from dada.schemas import PolicyInfo, TrainSummary

    run_dir = tmp_path / "backbone"
    summary = TrainSummary("t", 0, "fashion-mnist", "resnet50", "smoke", 1, policy=PolicyInfo("dada")).to_dict()
    _plant_summary(run_dir, json.dumps({"status": "FINISHED", **summary}))
    checkpoint.save_atomic({"kind": "train", "epoch": 0, "model": {}}, run_dir / "checkpoint.pt")
    if config is not None:
        (run_dir / "config.yaml").write_text(config)
    return run_dir


def _read_backbone(tmp_path: Path, config: str | None):
    from dada.detect.backbone import read_backbone_run

    read_backbone_run(_backbone_run(tmp_path, config))


def _instances(annotations: list, categories: list | None = None) -> dict:
    """A one-image COCO instance document (64x48) with ``annotations`` (bbox and category id 1 unless given)."""
    annotations = [{"id": i, "image_id": 1, "category_id": 1, "iscrowd": 0, **a} for i, a in enumerate(annotations)]
    return {
        "images": [{"id": 1, "file_name": "1.png", "width": 64, "height": 48}],
        "annotations": annotations,
        "categories": [{"id": 1, "name": "a"}] if categories is None else categories,
    }


GOOD_BOX = {"bbox": [4, 4, 10, 10]}
NAN = float("nan")


def _read_instances(tmp_path: Path, document: dict, split: str = "train") -> str:
    from dada.detect.annotations import read_instances

    (tmp_path / "instances.json").write_text(json.dumps(document))
    coco = read_instances(tmp_path / "instances.json", split)
    return f"{len(coco.anns)} instance(s) kept"


def _folder_splits(tmp_path: Path, train: list[str], val: list[str]):
    write_image_folder(tmp_path / "train", train, per_class=1)
    write_image_folder(tmp_path / "val", val, per_class=1)
    data.load_image_folder("folder", tmp_path, train=False)


def _sixteen_bit_grey(tmp_path: Path) -> str:
    from PIL import Image

    from dada.data.folders import open_image

    Image.fromarray(np.full((4, 4), 32896, dtype=np.uint16)).save(tmp_path / "grey16.png")  # 32896 = 128 * 257
    return f"pixels {sorted(set(np.asarray(open_image(str(tmp_path / 'grey16.png'))).flatten().tolist()))}"


def _png_header(tmp_path: Path, width: int, height: int) -> Path:
    """A PNG of ``width`` x ``height`` pixels without its pixels: PIL reads the size from the header."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path = tmp_path / "huge.png"
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )
    return path


def _huge_png(tmp_path: Path):
    from dada.data.folders import open_image

    open_image(str(_png_header(tmp_path, 15000, 15000)))


def _gigabyte_policy(tmp_path: Path):
    with open(tmp_path / "policy.json", "wb") as file:
        file.truncate(2**30)  # sparse: no gigabyte is written, and none may be read
    Policy.load(tmp_path / "policy.json")


def _read_only_run_folder(tmp_path: Path):
    if os.geteuid() == 0:
        pytest.skip("root writes into a read-only folder: the refusal cannot be seen as root")
    (tmp_path / "run").mkdir()
    (tmp_path / "run").chmod(0o555)
    try:
        _train(tmp_path).run()
    finally:
        (tmp_path / "run").chmod(0o755)


def _app_with_links_at_its_hydra_files(tmp_path: Path) -> subprocess.CompletedProcess:
    """The app as a process with links at Hydra's run log and at its record: the record is refused naming the link,
    and the target does not change."""
    run_dir, victim = tmp_path / "run", tmp_path / "outside" / "victim"
    victim.parent.mkdir()
    victim.write_text("precious\n")
    for name in ("__main__.log", ".hydra/config.yaml"):
        (run_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (run_dir / name).symlink_to(victim)
    result = _app("search", *SEARCH_SMOKE, f"run_dir={run_dir}")
    assert victim.read_text() == "precious\n"
    return result


def _run_log_through_a_link(tmp_path: Path) -> str:
    """Hydra's run log (dada.files.RunLogHandler) at a planted link: said once on stderr, the target unchanged."""
    import contextlib
    import io
    import logging

    from dada.files import RunLogHandler

    victim, link = tmp_path / "victim", tmp_path / "run" / "__main__.log"
    victim.write_text("precious\n")
    link.parent.mkdir()
    link.symlink_to(victim)
    handler, said = RunLogHandler(str(link)), io.StringIO()
    with contextlib.redirect_stderr(said):
        handler.emit(logging.LogRecord("dada", logging.INFO, __file__, 1, "a line", None, None))
    handler.close()
    assert victim.read_text() == "precious\n"
    return said.getvalue()


CASES = [
    Case(
        "1-zero-train-epochs",
        lambda tmp: _train(tmp, "scale.train_epochs=0"),
        ConfigValueError,
        r"scale.train_epochs=0 is out of range: it must be >= 1 or null",
    ),
    Case(
        "1-zero-search-epochs",
        lambda tmp: _search(tmp, "scale.search_epochs=0"),
        ConfigValueError,
        r"scale.search_epochs=0 is out of range: it must be >= 1 or null",
    ),
    Case(
        "1-zero-batch-size",
        lambda tmp: _search(tmp, "scale.batch_size=0"),
        ConfigValueError,
        r"scale.batch_size=0 is out of range: it must be >= 1 or null",
    ),
    Case(
        "2-negative-search-epochs",
        lambda tmp: _search(tmp, "scale.search_epochs=-1"),
        ConfigValueError,
        r"scale.search_epochs=-1 is out of range: it must be >= 1",
    ),
    Case(
        "3-train-lr-1e6-one-step",
        _train_blown_up_by_the_lr,
        FloatingPointError,
        r"non-finite values after epoch 1: test/loss.*last good checkpoint.*is kept",
        slow=True,
    ),
    Case(
        "3-search-infinite-weights",
        _search_with_infinite_batch_norm_statistics,
        FloatingPointError,
        r"non-finite values after epoch 1: network .*running_var.*Nothing of it was saved or exported",
        slow=True,
    ),
    Case(
        "4-finished-search-rerun-with-another-lr",
        _finished_search_rerun_with_another_lr,
        RunMismatchError,
        r"holds a run with other settings: search.lr \(0.1 -> 0.2\)\. It was left as it is",
        names_file=True,
    ),
    Case(
        "4-search-resumed-with-other-epochs",
        _search_resumed_with_other_epochs,
        RunMismatchError,
        r"other settings: search.epochs \(1 -> 5\).*\(or variant_name=\.\.\.\)",
        names_file=True,
    ),
    Case(
        "4-train-resumed-with-another-lr",
        _train_resumed_with_another_lr,
        RunMismatchError,
        r"other settings: recipe.lr \(0.1 -> 0.2\)",
        names_file=True,
    ),
    Case(
        "4-finished-search-rerun-by-the-app-keeps-its-record",
        _finished_search_rerun_by_the_app,
        1,
        r"RunMismatchError: .* holds a run with other settings: search.lr \(0.1 -> 0.2\)",
        names_file=True,
        slow=True,
    ),
    Case(
        "5-top-k-above-the-sub-policies",
        lambda tmp: _search(tmp, "search.top_k=1000"),
        ConfigValueError,
        r"search.top_k=1000 is out of range: the search space holds 105 sub-policies.*\[1, 105\]",
    ),
    Case(
        "5-mean-of-one-channel",
        lambda tmp: _search(tmp, "dataset.mean=[0.5]"),
        ConfigValueError,
        r"dataset.mean=\[0.5\] has 1 values; it needs 3, one per RGB channel",
    ),
    Case(
        "6-appended-unknown-search-key",
        lambda tmp: _search(tmp, "+search.bogus=1"),
        ConfigValueError,
        r"unknown config key 'search.bogus': SearchRecipe has no field 'bogus'; valid keys .*top_k",
    ),
    Case(
        "6-appended-unknown-root-key",
        lambda tmp: _search(tmp, "+bogus=1"),
        ConfigValueError,
        r"unknown config key 'bogus'",
    ),
    Case(
        "6-appended-unknown-train-key",
        lambda tmp: _train(tmp, "+policy.bogus=1"),
        ConfigValueError,
        r"unknown config key 'policy.bogus': PolicyConfig has no field 'bogus'",
    ),
    Case(
        "7-corrupt-image-decoded-for-search",
        _decode_corrupt_image,
        CorruptDataError,
        "cannot be decoded.*Delete the file or replace it",
        names_file=True,
    ),
    Case(
        "7-corrupt-image-read-for-evaluation",
        _read_corrupt_image,
        CorruptDataError,
        "cannot be decoded.*Delete the file or replace it",
        names_file=True,
    ),
    Case(
        "8-truncated-fashion-mnist-gz",
        _truncated_fashion_gz,
        CorruptDataError,
        "is corrupt.*apt-get install --reinstall dataset-fashion-mnist",
        names_file=True,
    ),
    Case(
        "8-fashion-mnist-gz-of-a-truncated-file",
        _fashion_gz_of_a_truncated_file,
        CorruptDataError,
        "needs 11.*apt-get install --reinstall dataset-fashion-mnist",
        names_file=True,
    ),
    Case(
        "8-corrupt-fashion-mnist-cache",
        _corrupt_fashion_cache,
        CorruptDataError,
        "not a uint8 IDX file.*delete it.*apt-get install --reinstall dataset-fashion-mnist",
        names_file=True,
    ),
    Case(
        "9-policy-file-not-json",
        lambda tmp: _load_policy_file(tmp, b"\x89PNG\r\n\x1a\n\xff\xfe"),
        ValueError,
        r"policy file .*policy.json is not UTF-8 text .*codec",
        names_file=True,
    ),
    Case(
        "9-policy-with-an-empty-operations-list",
        lambda tmp: _load_policy_file(tmp, b'{"sub_policies": [{"operations": []}]}'),
        ValueError,
        r"policy.json cannot be read as a policy: sub-policies \[0\] have an empty operations list",
        names_file=True,
    ),
    Case(
        "9-zero-ops-per-sub-policy",
        lambda tmp: _search(tmp, "search.ops_per_sub_policy=0"),
        ConfigValueError,
        r"search.ops_per_sub_policy=0 is out of range: a sub-policy holds 1 to 15",
    ),
    Case(
        "10-search-checkpoint-given-to-train",
        _search_checkpoint_given_to_train,
        checkpoint.WrongCheckpointError,
        r"is a search checkpoint, not a train one. It was not overwritten",
        names_file=True,
    ),
    Case(
        "10-train-checkpoint-given-to-search",
        _train_checkpoint_given_to_search,
        checkpoint.WrongCheckpointError,
        r"is a train checkpoint, not a search one",
        names_file=True,
    ),
    Case(
        "10-torch-file-that-is-no-checkpoint",
        lambda tmp: checkpoint.load(_plant_file(tmp, lambda path: torch.save([1, 2], path)), kind="train"),
        checkpoint.WrongCheckpointError,
        r"is no dada checkpoint \(it holds a list\), not a train one",
        names_file=True,
    ),
    Case(
        "10-plain-pickle-checkpoint",
        lambda tmp: checkpoint.load(_plant_file(tmp, lambda path: path.write_bytes(pickle.dumps({"epoch": 0})))),
        checkpoint.UnsafeCheckpointError,
        r"holds something else or is not a dada checkpoint",
        names_file=True,
    ),
    Case(
        "10-non-zip-checkpoint",
        lambda tmp: checkpoint.load(_plant_file(tmp, lambda path: path.write_text("x"))),
        checkpoint.CorruptCheckpointError,
        r"is not a dada checkpoint.*it was not overwritten",
        names_file=True,
    ),
    Case(
        "10-resume-with-another-estimator",
        _checkpoint_of_another_estimator,
        RunMismatchError,
        r"other settings: estimator.hidden_size .*estimator.name \(relax -> gumbel\)",
        names_file=True,
    ),
    Case(
        "10-old-checkpoint-of-another-estimator",
        _old_checkpoint_of_another_estimator,
        checkpoint.WrongCheckpointError,
        r"does not fit this search \(model wrn10_1, estimator gumbel\): "
        r"RuntimeError: Error\(s\) in loading state_dict",
        names_file=True,
        slow=True,
    ),
    Case(
        "11-negative-train-epochs",
        lambda tmp: _train(tmp, "scale.train_epochs=-1"),
        ConfigValueError,
        r"scale.train_epochs=-1 is out of range: it must be >= 1",
    ),
    Case(
        "11-mean-of-four-channels",
        lambda tmp: _train(tmp, "dataset.mean=[0.1,0.1,0.1,0.1]"),
        ConfigValueError,
        r"dataset.mean=\[0.1, 0.1, 0.1, 0.1\] has 4 values; it needs 3",
    ),
    Case(
        "12-unreachable-mlflow-server",
        _unreachable_mlflow_server,
        TrackingWarning,
        "mlflow tracking could not start.*127.0.0.1:9 is unreachable",
    ),
    Case(
        "13-truncated-sibling-policy",
        _truncated_sibling_policy,
        RuntimeWarning,
        r"seed0/policy.json was skipped in the top-k overlap.*cannot be read.*this search goes on",
        names_file=True,
    ),
    Case(
        "14-run-folder-locked-in-this-process",
        _run_folder_locked_in_this_process,
        RunLockedError,
        r"run is in use by process \d+, which holds .*run/.lock; wait for it to end",
        names_file=True,
    ),
    Case(
        "14-run-folder-locked-by-another-process",
        _run_folder_locked_by_another_process,
        RunLockedError,
        r"run is in use by process \d+",
        names_file=True,
        slow=True,
    ),
    Case("15-resume-writes-each-record-once", _records_after_a_resume, None, r"^records 0 2 e1@4 4 6 e2@8 8 10 e3@12$"),
    Case("15-analysis-reads-each-epoch-once", _epochs_read_once, None, r"^epochs \[1, 2\], loss of epoch 1 1.0$"),
    Case(
        "15-resumed-run-is-one-mlflow-run",
        _one_mlflow_run_across_a_resume,
        None,
        r"^1 MLflow run\(s\): FINISHED$",
        slow=True,
    ),
    Case("15-resumed-run-keeps-its-wandb-id", _one_wandb_run_id_across_a_resume, None, r"^run ids equal$", slow=True),
    Case(
        "16-model-without-a-recipe",
        lambda tmp: _train(tmp, "model=wrn10_1"),
        ConfigValueError,
        r"no recipe for model=wrn10_1 on dataset=fashion-mnist.*Choose one with recipe=<name>, "
        r"e.g. recipe=wrn40_2-fashion-mnist; available: .*wrn28_10-cifar10",
    ),
    Case(
        "16-negative-lr-is-named-as-set",
        lambda tmp: _train(tmp, "recipe.lr=-1"),
        ConfigValueError,
        r"recipe.lr=-1.0 is out of range: it must be > 0",
    ),
    Case(
        "17-apply-above-one",
        lambda _: ops.apply(_images(1.5), "Rotate", 0.5),
        ValueError,
        rf"{RANGE}.*found values in \[.*, 1.5\]",
    ),
    Case(
        "17-apply-negative",
        lambda _: ops.apply(_images(-0.5), "Invert", 0.5),
        ValueError,
        rf"{RANGE}.*found values in \[-0.5, ",
    ),
    Case(
        "17-apply-nan", lambda _: ops.apply(_images(float("nan")), "Posterize", 0.5), ValueError, f"{RANGE}.*found NaN"
    ),
    Case(
        "17-apply-inf",
        lambda _: ops.apply(_images(float("inf")), "Solarize", 0.5),
        ValueError,
        rf"{RANGE}.*found values in \[.*, inf\]",
    ),
    Case(
        "17-apply-batch-above-one",
        lambda _: _apply_batch(_images(255.0)),
        ValueError,
        rf"{RANGE}.*found values in \[.*, 255\]",
    ),
    Case("17-apply-batch-nan", lambda _: _apply_batch(_images(float("nan"))), ValueError, f"{RANGE}.*found NaN"),
    Case(
        "18-malicious-checkpoint",
        _refused_unrun(lambda tmp, marker: checkpoint.load(plant_checkpoint(tmp / "run" / "checkpoint.pt", marker))),
        checkpoint.UnsafeCheckpointError,
        "was refused as unsafe.*Nothing in it was run",
        names_file=True,
    ),
    Case(
        "18-truncated-checkpoint-holds",
        _truncated_checkpoint,
        checkpoint.CorruptCheckpointError,
        "is corrupt.*It was not overwritten",
        names_file=True,
    ),
    Case(
        "19-malicious-cifar-batch",
        _refused_unrun(lambda tmp, marker: (plant_cifar_root(tmp, marker), data.load_images("cifar10", tmp, True))),
        UnsafeDataError,
        "data_batch_1 was refused as unsafe.*Nothing in it was run",
        names_file=True,
    ),
    Case(
        "19-garbage-cifar-batch",
        _garbage_cifar_batch,
        CorruptDataError,
        "data_batch_1 is not a readable CIFAR python batch",
        names_file=True,
    ),
    Case(
        "20-yaml-python-tag-is-not-constructed",
        _yaml_with_a_python_tag,
        yaml.YAMLError,
        "could not determine a constructor for the tag",
    ),
    *[
        Case(f"23-range-{override.split('=')[0]}", lambda tmp, o=override, m=make: m(tmp, o), ConfigValueError, phrase)
        for make, override, phrase in [
            (_search, "search.grad_clip=-1", r"search.grad_clip=-1.0 is out of range: it must be >= 0$"),
            (_train, "recipe.gamma=-1", r"recipe.gamma=-1.0 is out of range: it must lie in \(0, 1\]"),
            (_train, "recipe.momentum=5", r"recipe.momentum=5.0 is out of range: it must lie in \[0, 1\)"),
            (_train, "recipe.warmup_multiplier=-3", r"recipe.warmup_multiplier=-3.0 is out of range: it must be >= 1"),
            (_search, "dataset.cutout=-5", r"dataset.cutout=-5 is out of range: it must be >= 0"),
            (_train, "dataset.cutout=-5", r"dataset.cutout=-5 is out of range: it must be >= 0"),
            (_search, "seed=99999999999999999999", r"seed=99999999999999999999 is out of range: .*\[0, 4294967295\]"),
            (_train, "recipe.lr=inf", r"recipe.lr=inf is out of range: it must be > 0 \(a finite number\)"),
            (_search, "search.policy_betas=[0.5,1.0]", r"search.policy_betas=\[0.5, 1.0\] .*each value must lie in"),
            (_train, "recipe.milestones=[0,5]", r"recipe.milestones=\[0.0, 5.0\] is out of range: each .* > 0"),
        ]
    ],
    Case(
        "23-range-detect-milestones",
        lambda _: _detect_config("schedule.milestones=[-1]"),
        ConfigValueError,
        r"schedule.milestones=\[-1.0\] is out of range: each value must be > 0",
    ),
    Case(
        "23-range-detect-seed",
        lambda _: _detect_config("seed=-1"),
        ConfigValueError,
        r"seed=-1 is out of range: it must lie in \[0, 4294967295\]",
    ),
    Case(
        "23-range-reproduce-seeds",
        lambda _: parse_seeds("0,-1"),
        argparse.ArgumentTypeError,
        r"seeds \[-1\] are out of range: each must lie in \[0, 4294967295\]",
    ),
    Case(
        "23-search-grad-clip-zero-clips-nothing",
        _search_network_step_with_grad_clip_zero,
        None,
        r"^weights \[-10.0, -10.0\]$",
    ),
    Case(
        "23-resume-under-other-threads",
        _resumed_under_other_threads,
        RunMismatchError,
        r"other settings: threads \(1 -> 2\)",
        names_file=True,
    ),
    Case(
        "23-finished-run-under-other-threads-is-a-no-op", _finished_run_under_other_threads, None, "^status FINISHED$"
    ),
    Case(
        "23-policy-probability-true",
        lambda tmp: _load_policy_file(tmp, b'{"sub_policies": [{"operations": [["Rotate", true, 0.5]]}]}'),
        ValueError,
        r"policy.json cannot be read as a policy: Rotate: probability=True is a bool, not a number",
        names_file=True,
    ),
    Case(
        "23-policy-string-weight",
        lambda tmp: _load_policy_file(
            tmp, b'{"sub_policies": [{"operations": [["Rotate", 0.5, 0.5]], "weight": "1"}]}'
        ),
        ValueError,
        r"policy.json cannot be read as a policy: weight='1' is a str, not a number or null",
        names_file=True,
    ),
    Case(
        "23-policy-nested-deeply",
        lambda tmp: _load_policy_file(tmp, b"[" * 100_000 + b"]" * 100_000),
        ValueError,
        r"policy file .*policy.json nests deeper than any policy file",
        names_file=True,
    ),
    Case(
        "23-policy-of-a-gigabyte-refused-unread",
        _gigabyte_policy,
        ValueError,
        r"policy file .*policy.json is 1024.0 MiB, above the 1 MiB a policy file may hold; it was not read",
        names_file=True,
    ),
    Case(
        "23-truncated-summary",
        lambda tmp: finished_summary(_plant_summary(tmp / "run", '{"status": "FINI')),
        ValueError,
        r"run summary .*run/summary.json cannot be parsed .*Nothing was run: move it away",
        names_file=True,
    ),
    Case(
        "23-list-valued-summary",
        lambda tmp: finished_summary(_plant_summary(tmp / "run", "[1, 2]")),
        ValueError,
        r"run summary .*run/summary.json holds a list, not the dict a run summary holds",
        names_file=True,
    ),
    Case(
        "23-analysis-leaves-out-a-bad-summary",
        _analysis_reads_around_bad_summaries,
        RuntimeWarning,
        r"^a run was left out: run summary .*seed1/summary.json cannot be parsed",
        names_file=True,
    ),
    Case(
        "23-reproduce-goes-on-past-a-bad-summary",
        _reproduce_skips_a_bad_summary,
        None,
        r"^not run: run summary .*summary.json holds a list",
    ),
    Case(
        "23-analysis-keeps-a-measured-table",
        _analysis_over_a_measured_table,
        ValueError,
        r"table1_smoke.csv counts \d+ runs, and no run of this scale and these seeds has finished: it was left",
        names_file=True,
    ),
    Case(
        "23-backbone-config-with-a-yaml-tag",
        lambda tmp: _read_backbone(tmp, "dataset: !!python/object/apply:os.system ['true']\n"),
        ValueError,
        r"backbone run config .*config.yaml does not say how .*could not determine a constructor",
        names_file=True,
    ),
    Case(
        "23-backbone-without-config",
        lambda tmp: _read_backbone(tmp, None),
        ValueError,
        r"backbone run config .*config.yaml does not say how .*cannot be read \(No such file",
        names_file=True,
    ),
    Case(
        "23-backbone-mean-of-two-values",
        lambda tmp: _read_backbone(tmp, "dataset:\n  mean: [0.5, 0.5]\n  std: [0.2, 0.2, 0.2]\n"),
        ValueError,
        r"config.yaml has dataset.mean=\[0.5, 0.5\] and dataset.std=\[0.2, 0.2, 0.2\]: each needs 3 numbers",
        names_file=True,
    ),
    *[
        Case(f"23-annotations-{name}", lambda tmp, d=document, s=split: _read_instances(tmp, d, s), error, phrase)
        for name, document, split, error, phrase in [
            (
                "invalid-boxes-dropped-and-counted",
                _instances([GOOD_BOX, {"bbox": [1, 1, -5, 4]}, {"bbox": [100, 1, 4, 4]}, {"bbox": [1, 1, NAN, 2]}]),
                "train",
                RuntimeWarning,
                r"3 annotations dropped \(1 zero or negative width or height, 1 outside the image, 1 NaN or infinite\)",
            ),
            (
                "all-boxes-invalid",
                _instances([{"bbox": [1, 1, -5, 4]}, {"bbox": "1,1,4,4"}]),
                "train",
                ValueError,
                r"holds no usable instance in its train split \(2 annotations, 2 dropped\): .*train on nothing",
            ),
            ("empty-val", _instances([]), "val", ValueError, r"no usable instance in its val split .*every AP None"),
            ("empty-train", _instances([]), "train", ValueError, r"no usable instance in its train split"),
            (
                "category-id-0",
                _instances([GOOD_BOX], [{"id": 0, "name": "a"}]),
                "train",
                ValueError,
                r"declares category ids 0: ids must be integers from 1 \(0 is the detectors' background label\)",
            ),
            (
                "huge-category-id",
                _instances([GOOD_BOX], [{"id": 10**7, "name": "a"}]),
                "train",
                ValueError,
                r"declares category ids 10000000: ids must be integers from 1 .* to 10000",
            ),
            (
                "undeclared-category",
                _instances([{**GOOD_BOX, "category_id": 3}]),
                "train",
                ValueError,
                r"annotation 0 has category id 3, which its categories do not declare \(declared: 1\)",
            ),
            (
                "string-bbox-dropped",
                _instances([GOOD_BOX, {"bbox": "1,1"}]),
                "train",
                RuntimeWarning,
                "1 not four numbers",
            ),
        ]
    ],
    Case(
        "23-folder-val-classes-differ",
        lambda tmp: _folder_splits(tmp, ["cat", "dog"], ["cat", "wolf"]),
        ValueError,
        r"class folders of .*val differ from those of .*train: missing \['dog'\], extra \['wolf'\]",
        names_file=True,
    ),
    Case(
        "23-folder-extra-val-class",
        lambda tmp: _folder_splits(tmp, ["cat", "dog"], ["cat", "dog", "emu"]),
        ValueError,
        r"missing none, extra \['emu'\] \(0 missing, 1 extra\)",
        names_file=True,
    ),
    Case("23-sixteen-bit-grey-png-scaled", _sixteen_bit_grey, None, r"^pixels \[128\]$"),
    Case(
        "23-png-of-15000x15000-pixels",
        _huge_png,
        CorruptDataError,
        r"image .*huge.png cannot be decoded \(DecompressionBombError: .*Delete the file or replace it",
        names_file=True,
    ),
    Case(
        "23-read-only-run-folder",
        _read_only_run_folder,
        OSError,
        r"run/.lock cannot be written .*the run folder .* is not writable by this user",
        names_file=True,
    ),
    Case(
        "23-run-log-at-a-link-is-off",
        _run_log_through_a_link,
        None,
        r"^the run log is off: .*run/__main__.log is a symbolic link",
    ),
    Case(
        "23-links-at-hydra-log-and-record",
        _app_with_links_at_its_hydra_files,
        1,
        r"UnsafeRunFileError: .*run/.hydra/config.yaml is a symbolic link .*; a run file is never written through",
        names_file=True,
        slow=True,
    ),
]


@pytest.mark.parametrize(
    "case", [pytest.param(case, id=case.id, marks=[pytest.mark.slow] if case.slow else []) for case in CASES]
)
def test_bad_input_fails_loudly(case, tmp_path):
    results = _snapshot(REPOSITORY / "results")  # the committed results: outside every run folder of the cases
    try:
        _check_case(case, tmp_path)
    finally:
        assert _snapshot(REPOSITORY / "results") == results, "a case changed the committed results"


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(path): (path.stat().st_size, path.stat().st_mtime_ns) for path in folder.rglob("*") if path.is_file()}


def _check_case(case: Case, tmp_path: Path) -> None:
    if case.raises is None:
        message = case.run(tmp_path)
    elif isinstance(case.raises, int):
        result = case.run(tmp_path)
        assert result.returncode == case.raises, result.stderr[-3000:]
        message = result.stdout + result.stderr
    elif issubclass(case.raises, Warning):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            case.run(tmp_path)
        messages = [str(warning.message) for warning in caught if issubclass(warning.category, case.raises)]
        assert len(messages) == 1, [str(warning.message) for warning in caught]
        message = messages[0]
    else:
        with pytest.raises(case.raises) as error:
            case.run(tmp_path)
        message = str(error.value)
    assert re.search(case.phrase, message, re.DOTALL), message
    if case.names_file:
        assert str(tmp_path) in message, message


def test_refuse_non_finite_names_the_metric_and_the_tensor_and_says_what_was_kept():
    layer = torch.nn.Linear(2, 2)
    refuse_non_finite("after epoch 1", {"train/loss": 0.5}, {"detector": layer}, "kept")  # all finite: no error
    with torch.no_grad():
        layer.bias[0] = float("inf")
    with pytest.raises(FloatingPointError, match=r"after epoch 2: train/loss, detector bias\. kept"):
        refuse_non_finite("after epoch 2", {"train/loss": float("nan")}, {"detector": layer}, "kept")


# -- 23: links planted at the run files' names ------------------------------------------------------------------------

# Every name the apps write in a run folder (as a process, Hydra adds its run log and .hydra/), and the temporary
# names earlier versions wrote through. The test also checks that a run writes no name outside this list.
RUN_FILES = {
    "common": (".lock", "checkpoint.pt", "config.yaml", "run_info.json", "metrics.jsonl", "summary.json"),
    "search": (
        "policy.json",
        "policy_archive.json",
        "tables/policy_state.json",
        "figures/policy_epoch001.png",
        "figures/policy_epoch001.pdf",
    ),
    "train": (),
    "detect": (),  # tests/test_detect.py plants them for a detection run
    "old temporary names": (".checkpoint.pt.tmp", ".config.yaml.partial", ".summary.json.partial"),
}


def _written_names(run_dir: Path) -> set[str]:
    return {str(path.relative_to(run_dir)) for path in run_dir.rglob("*") if path.is_file() and not path.is_symlink()}


def refuse_links_until_finished(run: Callable[[], object], tmp_path: Path, names: list[str]) -> list[str]:
    """Plant a link at each of ``names`` in ``tmp_path/run``, all at once; ``run()`` refuses the first it meets, naming
    it; that link is removed and ``run()`` starts again, until the run finishes. Check that no target outside the run
    folder changed, whatever the order, and that the run wrote no name outside ``names``; return the refused links."""
    run_dir, victims = tmp_path / "run", tmp_path / "outside" / "victims"  # no sibling seed of the run
    victims.mkdir(parents=True)
    for name in names:
        victim = victims / name.replace("/", "_")
        victim.write_text(f"precious: {name}\n")
        (run_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (run_dir / name).symlink_to(victim)
    refused = []
    for _ in range(len(names) + 1):
        try:
            run()
            break
        except Exception as error:  # each refusal names the link it met
            link = next((name for name in names if f"{run_dir / name} " in f"{error} "), None)
            assert link is not None and link not in refused, f"{type(error).__name__}: {error}"
            refused.append(link)
            (run_dir / link).unlink()
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "FINISHED"
    assert {path.name: path.read_text() for path in victims.iterdir()} == {
        name.replace("/", "_"): f"precious: {name}\n" for name in names
    }
    assert _written_names(run_dir) <= set(names), "a run file without a planted link: add it to RUN_FILES"
    assert len(refused) >= len(RUN_FILES["common"]), refused
    return refused


@pytest.mark.slow
@pytest.mark.parametrize("app", ["search", "train"])
def test_links_planted_at_every_run_file_leave_their_targets_untouched(app, tmp_path):
    make = {"search": _search, "train": _train}[app]
    names = [*RUN_FILES["common"], *RUN_FILES[app], *RUN_FILES["old temporary names"]]
    refuse_links_until_finished(lambda: make(tmp_path).run(), tmp_path, names)
