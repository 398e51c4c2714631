"""Experiments: the memory cap, the local search (failures, Ctrl-C, --resume) and compare_results."""

import json
import shutil
import signal
import subprocess
import sys
import time

import pytest
import yaml
from capped_run import run_capped

from conftest import EXPERIMENTS, REPO, run_cli

ALLOCATE_400MB = "import numpy as np; a = np.ones(400 * 2**20 // 8); print(a.sum())"


@pytest.mark.parametrize("use_cgroup", [True, False])
def test_memory_cap_stops_a_run_that_exceeds_it(use_cgroup):
    outcome = run_capped([sys.executable, "-c", ALLOCATE_400MB], cap_bytes=200 * 2**20, use_cgroup=use_cgroup)
    assert outcome.status == "oom_at_cap"
    assert outcome.enforced_by in (("cgroup-v1", "cgroup-v2", "watchdog") if use_cgroup else ("watchdog",))
    fits = run_capped([sys.executable, "-c", ALLOCATE_400MB], cap_bytes=800 * 2**20, use_cgroup=use_cgroup)
    assert fits.status == "ok" and fits.output.strip() == str(400 * 2**20 // 8 * 1.0)
    assert 380 < fits.peak_rss_mb < 800


def test_peak_rss_counts_the_whole_process_tree():
    child = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {ALLOCATE_400MB!r}], check=True)"
    outcome = run_capped([sys.executable, "-c", child])
    assert outcome.status == "ok" and outcome.peak_rss_mb > 400


def space_file(tmp_path, parameters, base_overrides=None) -> str:
    base = yaml.safe_load((REPO / "model" / "configs" / "search_base.yaml").read_text())
    for key, value in (base_overrides or {}).items():
        section, name = key.split(".")
        base.setdefault(section, {})[name] = value
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    space = {"base_config": "base.yaml", "epochs": 1, "parameters": parameters}
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(space))
    return str(tmp_path / "space.yaml")


def search(tmp_path, space, *extra, **kwargs):
    return run_cli(EXPERIMENTS / "hyperparam_search_local.py", "--space", space, "--runs-dir", tmp_path / "runs",
                   "--out", tmp_path / "summary.json", *extra, **kwargs)


@pytest.mark.parametrize("executor", ["process", "workers"])
def test_a_failing_trial_is_recorded_and_the_search_goes_on(tmp_path, volatility_dataset, executor):
    space = space_file(tmp_path, {"model.hidden": [8, 0, 4]}, {"data.path": str(volatility_dataset)})
    proc = search(tmp_path, space, "--executor", executor, "--parallel", "2" if executor == "workers" else "1")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["kind"] == "hp_search" and summary["where"] == "local" and summary["total"] == 3
    status = {row["params"]["model.hidden"]: row for row in summary["rows"]}
    assert status[0]["status"] == "failed" and "model.hidden" in status[0]["error"]
    assert status[8]["status"] == status[4]["status"] == "ok"
    assert summary["best"]["params"]["model.hidden"] in (8, 4)
    assert status[8]["test"]["test_mse"] > 0 and status[8]["history"][0]["epoch"] == 1
    assert proc.stdout.count("[") >= 3 and "best" in proc.stdout


def test_ctrl_c_leaves_a_partial_summary_and_resume_finishes(tmp_path, volatility_dataset):
    space = space_file(tmp_path, {"train.lr": [0.001, 0.002, 0.003, 0.004]}, {"data.path": str(volatility_dataset)})
    out = tmp_path / "summary.json"
    command = [sys.executable, EXPERIMENTS / "hyperparam_search_local.py", "--space", space, "--runs-dir",
               tmp_path / "runs", "--out", out]
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out.exists() and json.loads(out.read_text())["rows"]):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "--resume" in stderr
    partial = json.loads(out.read_text())
    assert partial["interrupted"] is True and 1 <= len(partial["rows"]) < 4
    done_before = {row["trial"] for row in partial["rows"]}
    resumed = search(tmp_path, space, "--resume", check_rc=0)
    final = json.loads(out.read_text())
    assert sorted(row["trial"] for row in final["rows"]) == [0, 1, 2, 3] and not final["interrupted"]
    assert all(row["status"] == "ok" for row in final["rows"])
    assert resumed.stdout.count("] trial ") == 4 - len(done_before)


def test_search_refuses_bad_options(tmp_path):
    space = space_file(tmp_path, {"train.lr": [0.001]})
    for extra, needle in ((["--parallel", "0"], "--parallel"), (["--set", "train.lr=1"], "searched key"),
                          (["--strategy", "random"], "--trials")):
        proc = search(tmp_path, space, *extra)
        assert proc.returncode == 2 and needle in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    (tmp_path / "space.yaml").write_text("parameters: [1, 2]")
    assert "parameters" in search(tmp_path, str(tmp_path / "space.yaml"), check_rc=2).stderr


def scale_document(rows):
    return {"kind": "scale_test", "where": "local", "created": "2026-01-01T00:00:00+00:00",
            "machine": {"cores": 2}, "settings": {"memory_cap_mb": 2048}, "rows": rows}


def compare(tmp_path, *inputs):
    return run_cli(EXPERIMENTS / "compare_results.py", *inputs, "--out", tmp_path / "report")


def test_compare_results_on_an_empty_set(tmp_path):
    (tmp_path / "results").mkdir()
    proc = compare(tmp_path, tmp_path / "results")
    assert proc.returncode == 0, proc.stderr
    report = (tmp_path / "report" / "report.md").read_text()
    assert "No results found" in report and "hyperparam_search_local.py" in report
    assert "no `scale_test` (local) results" in proc.stderr


def test_compare_results_on_a_partial_and_malformed_set(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    rows = [{"multiplier": k, "mode": mode, "world_size": 1, "train_mb": 1.4 * k,
             "status": "oom_at_cap" if (mode, k) == ("memory", 1000) else "ok",
             "peak_rss_mb": (300 + 1.6 * k if mode == "memory" else 310), "seconds": 3.0, "samples_per_second": 1e4}
            for k in (1, 10, 1000) for mode in ("memory", "stream")]
    (results / "scale.json").write_text(json.dumps(scale_document(rows + ["not a row"])))
    (results / "broken.json").write_text('{"kind": "hp_search", "rows": [')
    (results / "other.json").write_text(json.dumps({"hello": "world"}))
    (results / "odd.json").write_text(json.dumps(scale_document([{"multiplier": "ten", "mode": None}])))
    proc = compare(tmp_path, results)
    assert proc.returncode == 0, proc.stderr
    report = (tmp_path / "report" / "report.md").read_text()
    for needle in ("broken.json: not readable JSON", "other.json: not a results JSON",
                   "scale.json: 1 malformed row(s)", "odd.json: 1 malformed row(s)",
                   "`memory` mode, world size 1: exceeds the cap from x1000",
                   "`stream` mode, world size 1: peak RSS 310 MiB at x1 and 310 MiB at x1000 (1.00x)",
                   "no `hp_search` (local) results"):
        assert needle in report, needle
    assert (tmp_path / "report" / "plots" / "scale_peak_rss.png").stat().st_size > 10_000
    assert "broken.json" in proc.stderr


def test_compare_results_names_a_missing_input(tmp_path):
    proc = compare(tmp_path, tmp_path / "nope.json")
    assert proc.returncode == 2 and "nope.json does not exist" in proc.stderr


def test_workers_compute_what_fresh_processes_compute(tmp_path, volatility_dataset):
    space = space_file(tmp_path, {"model.hidden": [8, 16]}, {"data.path": str(volatility_dataset)})
    results = {}
    for executor, parallel in (("process", "1"), ("workers", "2")):
        out = tmp_path / f"{executor}.json"
        run_cli(EXPERIMENTS / "hyperparam_search_local.py", "--space", space, "--runs-dir", tmp_path / executor,
                "--out", out, "--executor", executor, "--parallel", parallel, check_rc=0)
        summary = json.loads(out.read_text())
        assert summary["mode"] == ("sequential" if executor == "process" else "workers-2")
        results[executor] = [(r["trial"], r["best_val_loss"], r["test"]) for r in summary["rows"]]
    assert results["process"] == results["workers"]


def test_scale_test_records_each_run_and_the_cap(tmp_path, volatility_dataset):
    base = tmp_path / "base"
    shutil.copytree(volatility_dataset, base)
    out = tmp_path / "scale.json"
    command = [EXPERIMENTS / "test_scale_local.py", "--base", base, "--multipliers", "1", "2", "--world-sizes", "1",
               "--max-steps", "2", "--runs-dir", tmp_path / "runs", "--out", out]
    proc = run_cli(*command, check_rc=0)
    rows = json.loads(out.read_text())["rows"]
    assert [(r["multiplier"], r["mode"], r["status"]) for r in rows] == [
        (1, "memory", "ok"), (1, "stream", "ok"), (2, "memory", "ok"), (2, "stream", "ok")]
    assert (base.parent / "base-x2" / "index.json").exists() and rows[2]["train_rows"] == 2 * rows[0]["train_rows"]
    assert all(r["peak_rss_mb"] > 50 and r["samples_per_second"] > 0 for r in rows)
    assert "samples_per_second" in proc.stdout
    run_cli(*command[:-1], tmp_path / "capped.json", "--memory-cap", "60MiB", "--modes", "memory", check_rc=0)
    capped = json.loads((tmp_path / "capped.json").read_text())["rows"]
    assert {r["status"] for r in capped} == {"oom_at_cap"} and all(r["error"] for r in capped)
    assert run_cli(*command, "--memory-cap", "lots").returncode == 2
