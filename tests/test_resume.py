"""What a new run or a resume refuses before writing anything: a resume that would change the
run or restart it from scratch, a folder with stray outputs, a model that cannot be built."""

import pytest

from ddlvad.cli import main
from ddlvad.train.loop import train
from tests.conftest import csv_rows, tiny_config, train_args


@pytest.fixture
def small_run(synth_root, tmp_path):
    run = tmp_path / "run"
    assert main(train_args(synth_root, run, tmp_path / "cache", "train.max_steps=3")) == 0
    return run


def _files(run):
    return {p: p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    "change, said",
    [
        (["--preset", "demo"], "--preset demo changes data.height (32 -> 64)"),
        (["--set", "train.lr=0.5"], "changes train.lr (0.01 -> 0.5)"),
    ],
)
def test_resume_refuses_a_config_that_changes_the_run(
    synth_root, tmp_path, small_run, capsys, change, said
):
    before = _files(small_run)
    args = train_args(synth_root, small_run, tmp_path / "cache", "train.max_steps=5")
    args = [a for a in args if a not in ("--preset", "tiny")]
    assert main([*args, *change, "--resume"]) == 2
    err = capsys.readouterr().err
    assert said in err and "config.yaml" in err and err.count("\n") == 1, err
    assert _files(small_run) == before
    assert main([*args, "--preset", "tiny", "--resume"]) == 0  # the run's own preset is fine
    assert len(csv_rows(small_run / "train_log.csv")) == 5


def test_resume_without_its_checkpoint_refuses_to_start_again(
    synth_root, tmp_path, small_run, capsys
):
    (small_run / "checkpoints" / "last.pt").unlink()
    log = (small_run / "train_log.csv").read_bytes()
    args = train_args(synth_root, small_run, tmp_path / "cache", "train.max_steps=3")
    assert main([*args, "--resume"]) == 2
    err = capsys.readouterr().err
    assert "last.pt: not found" in err and "records 3 steps" in err and "--overwrite" in err
    assert (small_run / "train_log.csv").read_bytes() == log
    assert not (small_run / "checkpoints" / "last.pt").exists()


def test_new_run_refuses_a_folder_with_stray_outputs(synth_root, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "scores.csv").write_text("video,frame,raw,smoothed,label\n")
    args = train_args(synth_root, run, tmp_path / "cache", "train.max_steps=2")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "outputs of an earlier run (scores.csv)" in err and "--overwrite" in err
    assert sorted(p.name for p in run.iterdir()) == [".lock", "scores.csv"]
    assert main([*args, "--overwrite"]) == 0
    assert not (run / "scores.csv").exists() and (run / "train_summary.json").exists()


def test_a_failure_while_building_the_model_writes_no_run(synth_root, tmp_path, monkeypatch):
    import ddlvad.train.loop as L

    def broken(cfg):
        raise ValueError("cannot build")

    monkeypatch.setattr(L, "create_model", broken)
    run = tmp_path / "run"
    cfg = tiny_config(synth_root, tmp_path / "c", train__max_steps=2)
    with pytest.raises(ValueError, match="cannot build"):
        train(cfg, run, progress=False)
    assert not run.exists()
