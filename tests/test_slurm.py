"""``--launcher slurm``: resources from conf/launcher/slurm.yaml, the status of each run, and a reduced Table 1 plan
on a real single-node Slurm (tests/cluster/slurm.sh), whose runs a fake python executes in seconds."""

import json
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import submitit

from reproduce import Run, plan, slurm
from reproduce.cli import main

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "cluster" / "slurm.sh"


def _runs(runs_root: Path, scale: str = "smoke") -> dict[str, Run]:
    return {f"{run.experiment}/{run.variant}": run for run in plan("table1", scale, (0,), runs_root)}


def test_resources_come_from_the_config_by_app_dataset_and_scale():
    config = slurm.load_config()
    smoke = _runs(Path("runs"))["search_fashion-mnist/relax"]
    assert slurm.resources(smoke, config) == slurm.Resources(gpus=0, cpus=2, mem_gb=4, time_min=30)
    paper = _runs(Path("runs"), "paper")
    assert slurm.resources(paper["search_cifar10/relax"], config).gpus == 1
    imagenet = paper["table4_imagenet_resnet50/dada-relax"]
    assert slurm.resources(imagenet, config).gpus == 8
    coco = {f"{run.experiment}/{run.variant}": run for run in plan("table5", "paper", (0,), Path("runs"))}
    assert slurm.resources(coco["table5_coco_mask_rcnn/dada-relax"], config) == slurm.Resources(1, 8, 64, 1440)
    command = slurm.job_command(imagenet, 8, "python")
    assert command[:6] == ["python", "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=8", "-m"]
    assert command[6:] == imagenet.command("python")[2:]
    assert slurm.job_command(paper["search_imagenet/relax"], 8, "python") == paper["search_imagenet/relax"].command(
        "python"
    )


def test_the_job_script_asks_for_the_resources_and_waits_for_the_search(tmp_path, monkeypatch):
    # Only the script's text is built, nothing is submitted: submitit's check for srun is stubbed, so this runs where
    # Slurm is not installed (the `slurm`-marked tests submit to a real one).
    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 1))
    run = _runs(tmp_path, "paper")["table4_imagenet_resnet50/dada-relax"]
    res = slurm.resources(run, slurm.load_config())
    executor = slurm._executor(run, res, slurm.load_config(), "41", "gpu", "lab")
    script = executor._executor._make_submission_file_text("python -m submitit", "uid")  # what sbatch receives
    for line in (
        "--dependency=afterok:41",
        "--partition=gpu",
        "--account=lab",
        "--gpus-per-node=8",
        "--cpus-per-task=64",
        "--mem=480GB",
        "--time=2880",
        "--requeue",
        "--signal=USR2@90",
    ):
        assert f"#SBATCH {line}" in script, line


def test_status_reads_the_summary_the_queue_and_the_job_log(tmp_path):
    runs = _runs(tmp_path / "runs")
    search, evaluation = runs["search_fashion-mnist/relax"], runs["table1_fashion-mnist_wrn40_2/dada-relax"]
    failed, orphan = runs["search_fashion-mnist/gumbel"], runs["table1_fashion-mnist_wrn40_2/dada-gumbel"]
    search.run_dir.mkdir(parents=True)
    (search.run_dir / "summary.json").write_text(json.dumps({"status": "FINISHED"}))
    log = slurm.job_log(failed, "12")
    log.parent.mkdir(parents=True)
    log.write_text("RuntimeError: search ... failed (exit 1)\nslurmstepd: *** JOB 12 CANCELLED ***\n")
    queue = {"13": ("PENDING", "Dependency"), "14": ("PENDING", slurm.NEVER), "15": ("RUNNING", "None")}
    data = tmp_path / "data"
    assert slurm.run_status(search, data, "11", queue).state == "finished"
    failure = slurm.run_status(failed, data, "12", queue)
    assert failure.state == "failed" and "JOB 12 CANCELLED" in str(failure)
    assert slurm.run_status(evaluation, data, "13", queue).detail == "Dependency"
    assert not slurm.run_status(orphan, data, "14", queue).waiting
    assert slurm.run_status(evaluation, data, "15", queue).state == "running"
    assert slurm.run_status(evaluation, data, None, queue).state == "not submitted"
    cifar = _runs(tmp_path / "runs")["search_cifar10/relax"]
    assert slurm.run_status(cifar, data, None, queue).detail == f"no data at {data / 'cifar-10-batches-py'}"
    assert slurm.run_status(evaluation, data, "16", None).state == "pending"  # no squeue, no job files yet


# -- a real single-node Slurm


@pytest.fixture(scope="module")
def cluster():
    """Slurm brought up by tests/cluster/slurm.sh (and taken down again if this fixture started it)."""
    try:
        result = subprocess.run([str(SCRIPT), "up"], capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as error:
        pytest.skip(f"tests/cluster/slurm.sh up could not run: {error}")
    if result.returncode != 0:
        pytest.skip(f"Slurm could not start here: {(result.stdout + result.stderr).strip()[-800:]}")
    yield
    if "already up" not in result.stdout:
        subprocess.run([str(SCRIPT), "down"], capture_output=True, timeout=120, check=False)


@pytest.fixture
def fake_python(tmp_path):
    """Stands in for python: logs its start and end in ``times.jsonl`` of its run folder (FAKE_RUN_DIRS: a JSON map of
    experiment/variant to the folder) and writes a FINISHED summary there. A run named in
    FAKE_SLOW sleeps a minute on its first attempt, so that the test can preempt or kill it; a later attempt (the
    resume) ends at once."""
    script = tmp_path / "fake_python"
    script.write_text(
        f"#!{sys.executable}\n"
        + "\n".join(
            [
                "import json, os, pathlib, sys, time",
                "arg = dict(a.split('=', 1) for a in sys.argv[3:])",
                "name = arg['experiment'] + '/' + arg['variant_name']",
                "run_dir = pathlib.Path(json.loads(os.environ['FAKE_RUN_DIRS'])[name])",
                "run_dir.mkdir(parents=True, exist_ok=True)",
                "times = run_dir / 'times.jsonl'",
                "slow = not times.exists() and name in os.environ.get('FAKE_SLOW', '').split(',')",
                "with times.open('a') as f: f.write(json.dumps({'start': time.time()}) + '\\n')",
                "time.sleep(60 if slow else 1)",
                "with times.open('a') as f: f.write(json.dumps({'end': time.time()}) + '\\n')",
                "(run_dir / 'summary.json').write_text(json.dumps({'status': 'FINISHED'}))",
            ]
        )
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def _times(run: Run, key: str) -> list[float]:
    path = run.run_dir / "times.jsonl"
    return (
        [entry[key] for entry in map(json.loads, path.read_text().splitlines()) if key in entry]
        if path.exists()
        else []
    )


@pytest.mark.slow
@pytest.mark.slurm
def test_a_reduced_table1_plan_runs_on_slurm(cluster, tmp_path, fake_python, monkeypatch, capsys):
    """Searches, then each evaluation after its search; a preempted search requeues and resumes, a killed one is
    reported with its log and its evaluation waits; submitting again submits only those two."""
    runs_root, data = tmp_path / "runs", tmp_path / "data"
    every = _runs(runs_root)
    names = [
        "search_fashion-mnist/relax",
        "search_fashion-mnist/gumbel",
        "search_fashion-mnist/relax-paper",
        "table1_fashion-mnist_wrn40_2/none",
        "table1_fashion-mnist_wrn40_2/dada-relax",
        "table1_fashion-mnist_wrn40_2/dada-gumbel",
        "table1_fashion-mnist_wrn40_2/dada-relax-paper",
    ]
    runs = [every[name] for name in names]
    preempted, killed = every["search_fashion-mnist/gumbel"], every["search_fashion-mnist/relax-paper"]
    monkeypatch.setenv("FAKE_SLOW", f"{preempted.experiment}/{preempted.variant},{killed.experiment}/{killed.variant}")
    # the run folders as the apps name them (a scale's swapped-in network adds -on-<network>), which the fake writes
    monkeypatch.setenv("FAKE_RUN_DIRS", json.dumps({name: str(run.run_dir) for name, run in every.items()}))
    config = slurm.load_config()
    config["resources"].append({"scale": "smoke", "cpus": 1, "mem_gb": 1, "time_min": 5})  # 2 jobs at once here

    outcomes = slurm.submit(runs, data, python=fake_python, config=config)
    assert all(outcome.status.startswith("submitted as Slurm job") for outcome in outcomes)
    jobs = slurm.read_jobs(runs_root / "smoke" / slurm.JOBS_FILE)
    assert outcomes[4].status.endswith(f"after job {jobs[str(runs[0].run_dir)]}")

    signalled: set[str] = set()
    deadline = time.monotonic() + 90
    while signalled != {"preempted", "killed"} and time.monotonic() < deadline:
        if "preempted" not in signalled and _times(preempted, "start"):  # what Slurm sends on a preemption
            for sig in ("TERM", "USR2"):
                subprocess.run(["scancel", f"--signal={sig}", jobs[str(preempted.run_dir)]], check=True)
            signalled.add("preempted")
        if "killed" not in signalled and _times(killed, "start"):
            subprocess.run(["scancel", jobs[str(killed.run_dir)]], check=True)
            signalled.add("killed")
        time.sleep(0.5)
    assert signalled == {"preempted", "killed"}

    statuses = {entry.run.run_dir: entry for entry in slurm.wait(runs, data, poll_s=1)}
    assert [statuses[run.run_dir].state for run in runs] == ["finished"] * 2 + ["failed"] + ["finished"] * 3 + [
        "pending"
    ]
    assert "CANCELLED" in statuses[killed.run_dir].detail
    assert slurm.NEVER in statuses[runs[-1].run_dir].detail
    assert len(_times(preempted, "start")) == 2 and len(_times(preempted, "end")) == 1  # requeued, resumed
    assert (
        slurm.read_jobs(runs_root / "smoke" / slurm.JOBS_FILE)[str(preempted.run_dir)] == jobs[str(preempted.run_dir)]
    )
    by_folder = {run.run_dir: run for run in runs}
    for evaluation in runs[4:6]:
        assert min(_times(evaluation, "start")) >= max(_times(by_folder[evaluation.needs], "end"))

    main(["status", "table1", "--scale", "smoke", "--seeds", "0", "--runs", str(runs_root), "--data-root", str(data)])
    report = capsys.readouterr().out
    assert f"finished      {jobs[str(preempted.run_dir)]:>8}  {preempted.label}" in report
    assert "not run" in report and "not submitted" in report  # CIFAR rows without data; other columns

    again = slurm.submit(runs, data, python=fake_python, config=config)
    assert [outcome.status.split(" as ")[0] for outcome in again] == ["finished earlier"] * 2 + ["submitted"] + [
        "finished earlier"
    ] * 3 + ["submitted"]
    statuses = slurm.wait(runs, data, poll_s=1)
    assert all(entry.state == "finished" for entry in statuses)
    assert min(_times(runs[-1], "start")) >= max(_times(killed, "end"))
