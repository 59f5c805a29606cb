"""Inputs refused with the file and key named (an unknown model, a config key given twice),
a damaged tracks cache rebuilt like a damaged frame cache entry, and write errors (a full
disk) that name the file being written."""

import errno

import pytest

from ddlvad.cli import main
from ddlvad.config_check import ConfigError
from ddlvad.data.cache import CacheWarning
from ddlvad.models import MODELS
from ddlvad.objects.store import read_tracks
from ddlvad.rundir import load_run_config
from ddlvad.train.loop import train
from tests.conftest import tiny_config, train_args


def test_unknown_model_is_refused_before_anything_is_written(synth_root, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(train_args(synth_root, run, tmp_path / "cache", "model.name=foo")) == 2
    err = capsys.readouterr().err
    assert "model.name = 'foo': expected c3dsu or unet" in err and not run.exists()
    from ddlvad.config_check import MODEL_NAMES

    assert sorted(MODEL_NAMES) == sorted(MODELS)


def test_duplicate_config_section_names_file_and_key(trained_run, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    text = (trained_run / "config.yaml").read_text()
    (run / "config.yaml").write_text(text + "score:\n  patch: 4\n")
    with pytest.raises(ConfigError, match=r"config\.yaml: .*duplicate key 'score', first at line"):
        load_run_config(run)


def test_damaged_tracks_cache_is_rebuilt_with_a_warning(synth_root, tmp_path):
    cfg = tiny_config(synth_root, tmp_path / "cache", train__max_steps=1)
    train(cfg, tmp_path / "a", progress=False)
    (entry,) = (tmp_path / "cache" / "tracks").glob("tracks-*.json")
    good = entry.read_bytes()
    (tmp_path / "good.json").write_bytes(good)
    entry.write_bytes(good[: len(good) // 2])
    with pytest.warns(CacheWarning, match=rf"{entry.name}: damaged tracks cache entry"):
        train(cfg, tmp_path / "b", progress=False)
    (a, meta_a), (b, meta_b) = read_tracks(entry), read_tracks(tmp_path / "good.json")
    assert a == b and meta_a["key"] == meta_b["key"]


@pytest.mark.parametrize(
    "failure",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        RuntimeError(
            "[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing "
            "file data/0: file write failed"
        ),
    ],
)
def test_a_failed_checkpoint_write_names_the_file(
    synth_root, tmp_path, monkeypatch, capsys, failure
):
    import ddlvad.checkpoint

    def full(*a, **k):
        raise failure

    monkeypatch.setattr(ddlvad.checkpoint.torch, "save", full)
    run = tmp_path / "run"
    assert main(train_args(synth_root, run, tmp_path / "cache", "train.max_steps=2")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{run / 'checkpoints' / 'last.pt'}: " in err, err
    assert "inline_container" not in err and "Errno" not in err
