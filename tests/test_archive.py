"""The committed run archive (reproduce.archive): what it packs, that its bytes are reproducible, and that a restore
never overwrites a local run or writes outside the runs root."""

import io
import json
import shutil
import tarfile

import pytest

from dada.files import UnreadableFileError
from reproduce.archive import pack, restore
from reproduce.study import load_design, main, study_runs


def _run(root, variant, status):
    run_dir = root / "mini" / "study_x" / variant / "seed0"
    (run_dir / "tables").mkdir(parents=True)
    (run_dir / "summary.json").write_text(json.dumps({"status": status, "test_error_top1": 20.0}))
    (run_dir / "tables" / "policy_state.json").write_text("{}")
    (run_dir / "checkpoint.pt").write_bytes(b"\0" * 64)
    (run_dir / "reproduce.log").write_text("100%|##########|")
    (run_dir / "figures").mkdir()
    (run_dir / "figures" / "policy_epoch001.png").write_bytes(b"\x89PNG")
    (run_dir / ".lock").write_text("")
    return run_dir


def test_pack_keeps_finished_runs_without_checkpoints_and_reproducible_bytes(tmp_path):
    root = tmp_path / "runs"
    runs = [_run(root, "none", "FINISHED"), _run(root, "random", "RUNNING")]
    archive = tmp_path / "results" / "x_runs.tar.gz"
    assert pack(runs, archive, root) == [runs[0]]
    with tarfile.open(archive) as tar:
        names = sorted(tar.getnames())
    assert names == ["mini/study_x/none/seed0/summary.json", "mini/study_x/none/seed0/tables/policy_state.json"]
    first = archive.read_bytes()
    (runs[0] / "summary.json").touch()  # a new mtime, the same content
    pack(runs, archive, root)
    assert archive.read_bytes() == first


def test_restore_adds_missing_runs_and_keeps_local_ones(tmp_path):
    root = tmp_path / "runs"
    runs = [_run(root, "none", "FINISHED"), _run(root, "random", "FINISHED")]
    archive = tmp_path / "x_runs.tar.gz"
    pack(runs, archive, root)
    fresh = tmp_path / "fresh"
    local = fresh / "mini" / "study_x" / "random" / "seed0"
    local.mkdir(parents=True)
    (local / "summary.json").write_text('{"status": "FINISHED", "test_error_top1": 30.0}')
    restored, kept = restore(archive, fresh)
    assert restored == [fresh / "mini" / "study_x" / "none" / "seed0"] and kept == [local]
    assert json.loads((restored[0] / "summary.json").read_text())["test_error_top1"] == 20.0
    assert json.loads((local / "summary.json").read_text())["test_error_top1"] == 30.0  # never overwritten
    assert restore(archive, fresh) == ([], [restored[0], local])  # a second restore keeps both


def test_restore_refuses_names_outside_the_runs_root_and_a_bad_file(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        data = b'{"status": "FINISHED"}'
        info = tarfile.TarInfo("../outside/summary.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(tarfile.FilterError):
        restore(archive, tmp_path / "runs")
    assert not (tmp_path / "outside").exists()
    (tmp_path / "bad.tar.gz").write_text("not an archive")
    with pytest.raises(UnreadableFileError, match="bad.tar.gz is not a readable run archive"):
        restore(tmp_path / "bad.tar.gz", tmp_path / "runs")


def test_a_study_on_some_seeds_restores_and_repacks_every_archived_run(tmp_path):
    """``reproduce.study --seeds 0 --archive`` on a fresh runs root: seed 1's archived runs come back, stay packed."""
    design = load_design("search_matters")
    root, archive = tmp_path / "runs", tmp_path / "results" / "search_matters_smoke_runs.tar.gz"
    planned = [run.run_dir for run in study_runs(design, "smoke", (0, 1), root)]
    for run_dir in planned:
        run_dir.mkdir(parents=True)
        (run_dir / "summary.json").write_text('{"status": "FINISHED"}')
    pack(planned, archive, root)
    shutil.rmtree(root)
    argv = ["search_matters", "--scale", "smoke", "--seeds", "0", "--runs", str(root), "--archive", str(archive)]
    assert main([*argv, "--data-root", str(tmp_path / "no-data")]) == 0  # every run finished earlier: none starts
    with tarfile.open(archive) as tar:
        assert len(tar.getnames()) == len(planned)
