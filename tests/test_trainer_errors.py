"""Bad input ends with one line naming the problem, exit status 2, and nothing written; plus --resume
after a SIGKILL in one process."""

import signal
import subprocess
import time

import numpy as np
import pytest
import torch

from etl.writer import DatasetWriter
from trainer.cli import main
from trainer_support import (
    REPO,
    clean_env,
    comparable,
    free_port,
    make_dataset,
    result_of,
    run_trainer,
    trainer_command,
    write_config,
)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data") / "good")


def fails(capsys, *argv) -> str:
    """Run the trainer in this process, expecting exit status 2; return its one error line."""
    assert main(list(argv)) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in captured.err, captured.err
    assert "RESULT" not in captured.out
    return lines[0]


def copy_dataset(source, target):
    target.mkdir()
    for file in source.iterdir():
        (target / file.name).write_bytes(file.read_bytes())
    return target


def write_bad_dataset(out, y_train):
    x = np.zeros((len(y_train), 8, 3), np.float32)
    with DatasetWriter(out) as writer:
        writer.add("train", x, np.asarray(y_train, np.float32))
        writer.add("validation", x[:4], np.zeros(4, np.float32))
        writer.add("test", x[:4], np.zeros(4, np.float32))
        writer.finish({"task": "classification", "target": "direction", "window": 8, "horizon": 1,
                       "feature_names": ["a", "b", "c"], "normalization": {"mean": [0] * 3, "std": [1] * 3}})
    return out


@pytest.mark.parametrize(("change", "named"), [
    ({"data": {"path": "/nonexistent/dataset"}}, "/nonexistent/dataset"),
    ({"model": {"task": "classification"}}, "model.task=classification"),
    ({"train": {"batch_size": 1001}}, "train.batch_size=1001"),
    ({"train": {"device": "cuda"}}, "train.device=cuda"),
    ({"train": {"epochs": 0}}, "train.epochs"),
    ({"train": {"learning_rate": 0.1}}, "train.learning_rate"),
    ({"model": {"kind": "lstm", "layers": 0}}, "model.layers"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, dataset, change, named):
    if change == {"train": {"device": "cuda"}} and torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    config = write_config(tmp_path / "c.yaml", dataset, tmp_path / "out", **change)
    assert named in fails(capsys, "--config", str(config))
    assert not (tmp_path / "out").exists()


def test_bad_override_on_the_command_line(tmp_path, capsys, dataset):
    config = write_config(tmp_path / "c.yaml", dataset, tmp_path / "out")
    assert "train.epochs" in fails(capsys, "--config", str(config), "--set", "train.epochs=many")
    assert "missing.yaml" in fails(capsys, "--config", str(tmp_path / "missing.yaml"))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("damage", ["truncate", "garble", "delete", "nan", "labels"])
def test_damaged_dataset_names_the_shard(tmp_path, capsys, dataset, damage):
    if damage == "labels":
        bad = write_bad_dataset(tmp_path / "bad", [0, 1, 0.5, 1])
    else:
        bad = copy_dataset(dataset, tmp_path / "bad")
    shard = bad / "train-00001.npz" if damage != "labels" else bad / "train-00000.npz"
    if damage == "truncate":
        shard.write_bytes(shard.read_bytes()[:-100])
    elif damage == "garble":
        data = bytearray(shard.read_bytes())
        data[:4] = b"XXXX"
        shard.write_bytes(bytes(data))
    elif damage == "delete":
        shard.unlink()
    elif damage == "nan":
        with np.load(shard) as npz:
            x, y = npz["x"].copy(), npz["y"]
        x[3, 2, 1] = np.nan
        with open(shard, "r+b") as f:  # same size, so only loading the shard can tell
            np.savez(f, x=x, y=y)
    config = write_config(tmp_path / "c.yaml", bad, tmp_path / "out", train={"batch_size": 2})
    assert shard.name in fails(capsys, "--config", str(config))
    assert not (tmp_path / "out").exists()


def test_unusable_save_dir(tmp_path, capsys, dataset):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    config = write_config(tmp_path / "c.yaml", dataset, blocker)
    assert "io.save_dir" in fails(capsys, "--config", str(config))


def test_resume_refuses_a_checkpoint_of_another_model_or_a_corrupt_one(tmp_path, capsys, dataset):
    config = write_config(tmp_path / "c.yaml", dataset, tmp_path / "out", train={"epochs": 1})
    assert main(["--config", str(config)]) == 0
    capsys.readouterr()
    run = tmp_path / "out" / "run"
    before = {file.name: file.read_bytes() for file in run.iterdir()}
    assert "different model_config" in fails(capsys, "--config", str(config), "--set", "model.hidden=8", "--resume")
    checkpoint = run / "checkpoint.pt"
    checkpoint.write_bytes(b"garbage")
    assert "checkpoint.pt is unreadable" in fails(capsys, "--config", str(config), "--resume")
    before["checkpoint.pt"] = b"garbage"
    assert {file.name: file.read_bytes() for file in run.iterdir()} == before


def test_distributed_environment_must_be_complete(tmp_path, capsys, dataset, monkeypatch):
    config = write_config(tmp_path / "c.yaml", dataset, tmp_path / "out")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    assert "MASTER_ADDR" in fails(capsys, "--config", str(config))
    monkeypatch.setenv("MASTER_ADDR", "localhost")
    monkeypatch.setenv("MASTER_PORT", "http")
    assert "MASTER_PORT" in fails(capsys, "--config", str(config))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("host", "says"), [("no-such-master.invalid", "does not resolve"),
                                            ("127.0.0.1", "nothing listens")])
def test_unreachable_master_waits_then_fails_in_one_line(tmp_path, dataset, host, says):
    config = write_config(tmp_path / "c.yaml", dataset, tmp_path / "out", train={"dist_timeout": 3})
    env = clean_env(RANK="1", WORLD_SIZE="2", MASTER_ADDR=host, MASTER_PORT=str(free_port()))
    start = time.monotonic()
    proc = run_trainer("--config", str(config), env=env, timeout=120)
    waited = time.monotonic() - start
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0] and host in lines[0], proc.stderr
    assert 3 <= waited < 60
    assert not (tmp_path / "out").exists()


def test_killed_single_process_resumes_to_the_same_result(tmp_path, capsys):
    dataset = make_dataset(tmp_path / "data", shards={"train": [4000] * 3, "validation": [300], "test": [300]})
    reference = write_config(tmp_path / "a.yaml", dataset, tmp_path / "reference", train={"epochs": 3})
    assert main(["--config", str(reference)]) == 0
    expected = result_of(capsys.readouterr().out)

    config = write_config(tmp_path / "b.yaml", dataset, tmp_path / "killed", train={"epochs": 3})
    proc = subprocess.Popen(trainer_command("--config", str(config)), cwd=REPO, env=clean_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    for line in proc.stdout:
        if line.startswith("epoch=1 "):
            proc.send_signal(signal.SIGKILL)
            break
    assert proc.wait(timeout=60) == -signal.SIGKILL
    resumed = run_trainer("--config", str(config), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stdout and "epoch=3 " in resumed.stdout
    assert comparable(result_of(resumed.stdout)) == comparable(expected)
