"""ddlvad test --protocols: every protocol from one pass, consistent with a plain test."""

import json
import shutil

import pytest

from ddlvad.cli import main
from ddlvad.rundir import load_run_config


def test_protocol_table_matches_plain_test(trained_run, synth_root, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    base = ["test", "--run", str(run), "--root", str(synth_root), "--quiet"]
    assert main(base + ["--protocols"]) == 0
    assert "micro(min-max)" in capsys.readouterr().out
    rows = json.loads((run / "protocols.json").read_text())["rows"]
    assert not (run / "metrics.json").exists()  # a comparison, not a test result
    s = load_run_config(run).score
    grids = {(r["patch"], r["shifted"]) for r in rows}
    assert (8, True) in grids and (4, False) in grids and all(p <= 32 for p, _ in grids)
    for patch, median in [(s.patch, s.median), (4, 0)]:
        assert main(base + ["--patch", str(patch), "--median", str(median)]) == 0
        m = json.loads((run / "metrics.json").read_text())
        row = next(
            r for r in rows if (r["patch"], r["shifted"], r["median"]) == (patch, False, median)
        )
        assert row["micro"] == pytest.approx(m["frame_auc_micro"], abs=1e-9)
        assert row["macro"] == pytest.approx(m["frame_auc_macro"], abs=1e-9, nan_ok=True)
