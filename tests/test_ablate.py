import json
from pathlib import Path

import pytest

from ddlvad.experiments.ablate import MODES, ablate, markdown, summarise
from tests.conftest import tiny_config


def test_ablate_tiny_grid_table_and_resume(synth_root, tmp_path):
    base = tiny_config(synth_root, tmp_path / "cache", train__max_steps=2)
    out = tmp_path / "grid"
    doc = ablate(base, out, seeds=1, dataset="ped2", command="test", progress=False)
    assert len(doc["cells"]) == 6
    for row in doc["cells"]:
        m = json.loads((out / f"{row['model']}_{row['mode']}_s0" / "metrics.json").read_text())
        assert row["auc"] == m["frame_auc_micro"]
        assert doc["summary"][row["model"]][row["mode"]]["mean"] == pytest.approx(100 * row["auc"])
    md = (out / "ablation.md").read_text()
    rows = [ln for ln in md.splitlines() if ln.startswith("| UNET") or ln.startswith("| C3DSU")]
    assert len(rows) == 2 and all(ln.count("|") == 8 for ln in rows)  # 1 + 3 ours + 3 paper
    assert "98.46" in md and "95.28" in md
    # resumable: finished cells are not rerun
    ck = out / "c3dsu_dynamic_s0" / "checkpoints" / "last.pt"
    stamp = ck.stat().st_mtime_ns
    ablate(base, out, seeds=1, dataset="ped2", command="test", progress=False)
    assert ck.stat().st_mtime_ns == stamp
    # collect-only: seed 1 is not trained, the table still holds the seed-0 cells
    doc = ablate(base, out, seeds=2, dataset="ped2", command="t", progress=False, train=False)
    assert len(doc["cells"]) == 6 and not (out / "c3dsu_dynamic_s1").exists()


def test_variant_columns_overrides_table_and_report(synth_root, tmp_path):
    """The extra columns set their overrides, have no paper value, and the report page shows
    the grid and the overlaid sigma trajectories of the learned-sigma cells."""
    from ddlvad.experiments.ablate import cell_config
    from ddlvad.experiments.grid_report import build_grid_report

    base = tiny_config(synth_root, tmp_path / "cache", train__max_steps=2)
    base.pseudo.no_track = "random"
    c = cell_config(base, "c3dsu", "static95", 1)
    assert (c.pseudo.mode, c.pseudo.sigma, c.train.seed) == ("static", 0.95, 1)
    c = cell_config(base, "c3dsu", "dynamic_slow", 0)
    assert (c.pseudo.mode, c.pseudo.l_lr_scale) == ("dynamic", 0.1)
    out = tmp_path / "grid"
    modes = ("dynamic", "static95", "dynamic_slow")
    doc = ablate(base, out, models=("c3dsu",), modes=modes, dataset="ped2", progress=False)
    sigma = {r["mode"]: r["sigma"] for r in doc["cells"]}
    assert sigma["static95"] == pytest.approx(0.95)
    assert abs(sigma["dynamic_slow"] - 0.5) < abs(sigma["dynamic"] - 0.5)  # l moved less
    md = (out / "ablation.md").read_text()
    head = next(ln for ln in md.splitlines() if ln.startswith("| model"))
    assert head.count("(paper)") == 1 and "SDL σ=0.95 (ours)" in head  # paper: DDL only
    assert md.count("| c3dsu ") == 3  # one line per run
    page = build_grid_report(out).read_text()
    assert "DDL, l at lr/10" in page and page.count("data:image/png;base64") == 1
    assert (out / "ablation_sigma.png").stat().st_size > 0


def test_grid_report_needs_ablation_json(tmp_path):
    from ddlvad.experiments.grid_report import build_grid_report

    with pytest.raises(FileNotFoundError, match="ablation.json"):
        build_grid_report(tmp_path)


def test_grid_report_refuses_single_run_options(tmp_path, capsys):
    from ddlvad.cli import main

    code = main(["report", "--ablation", str(tmp_path), "--compare", str(tmp_path / "other")])
    assert code == 2 and "--compare is for a single run's report" in capsys.readouterr().err


def test_summary_mean_std():
    rows = [{"model": "c3dsu", "mode": "dynamic", "auc": a} for a in (0.8, 0.9, 1.0)]
    s = summarise(rows)["c3dsu"]["dynamic"]
    assert s["mean"] == pytest.approx(90.0) and s["std"] == pytest.approx(10.0) and s["n"] == 3
    md = markdown(summarise(rows), ["c3dsu"], MODES, "synthetic", "cmd")
    assert "90.00 ± 10.00, spread 20.00 (n=3)" in md and "—" in md  # missing: a dash
    one = markdown(summarise(rows[:1]), ["c3dsu"], MODES, "synthetic", "cmd")
    assert "80.00 (n=1)" in one and "±" not in one.split("|", 1)[1]


def test_sweep_cells_seeds_table_and_bad_file(synth_root, tmp_path):
    from ddlvad.experiments.sweep import read_sweep, sweep
    from ddlvad.experiments.sweep import summarise as sweep_summary

    base = tiny_config(synth_root, tmp_path / "cache", train__max_steps=2)
    f = tmp_path / "sweep.yaml"
    f.write_text("base: {}\nlr_low: {train.lr: 0.001, score.patch: 4}\n")
    out = tmp_path / "sweep"
    doc = sweep(base, f, out, seeds=2, command="test", progress=False)
    assert {(r["cell"], r["seed"]) for r in doc["cells"]} == {
        (c, s) for c in ("base", "lr_low") for s in (0, 1)
    }
    m = json.loads((out / "lr_low_s1" / "metrics.json").read_text())
    assert m["protocol"]["patch"] == 4 and (out / "sweep.png").stat().st_size > 0
    s = doc["summary"]["lr_low"]["frame_auc_micro"]
    aucs = [100 * r["frame_auc_micro"] for r in doc["cells"] if r["cell"] == "lr_low"]
    assert s["spread"] == pytest.approx(max(aucs) - min(aucs)) and s["std"] is not None
    assert "train.lr=0.001" in (out / "sweep.md").read_text()
    one = sweep_summary(doc["cells"][:1], {"base": {}})["base"]["frame_auc_micro"]
    assert one["std"] is None and one["spread"] is None  # no spread from one seed
    f.write_text("- not a mapping\n")
    with pytest.raises(ValueError, match="sweep.yaml"):
        read_sweep(f)
    f.write_text("bad: {train.nope: 1}\n")
    with pytest.raises(Exception, match="nope"):
        sweep(base, f, tmp_path / "s2", seeds=1, command="t", progress=False)


def test_shards_split_the_grid_and_sweep_into_disjoint_covering_parts(
    synth_root, tmp_path, monkeypatch
):
    """--shard I/N: the N shards run every cell exactly once between them, seed-major, and a
    bad shard is a one-line error before anything trains."""
    from ddlvad.cli import main
    from ddlvad.experiments import ablate as ablate_mod
    from ddlvad.experiments import sweep as sweep_mod

    ran: list[str] = []
    fake = lambda cfg, run_dir, progress: ran.append(run_dir.name)  # noqa: E731
    monkeypatch.setattr(ablate_mod, "run_cell", fake)
    monkeypatch.setattr(sweep_mod, "run_cell", fake)
    base = tiny_config(synth_root, tmp_path / "cache")
    parts = []
    for i in range(3):
        ran.clear()
        ablate_mod.run_grid(base, tmp_path, 2, ("unet", "c3dsu"), MODES, False, (i, 3))
        parts.append(list(ran))
    whole = [
        ablate_mod.cell_name(m, k, s) for s in range(2) for m in ("unet", "c3dsu") for k in MODES
    ]
    assert sorted(sum(parts, [])) == sorted(whole) and [len(p) for p in parts] == [4, 4, 4]
    assert parts[0] == whole[0::3]  # seed-major: shard 0 starts with seed 0's first cell
    ran.clear()
    sweep_mod.run_sweep(base, {"a": {}, "b": {}, "c": {}}, tmp_path, 2, False, (1, 2))
    assert ran == ["b_s0", "a_s1", "c_s1"]  # runs 1, 3, 5 of a_s0 b_s0 c_s0 a_s1 b_s1 c_s1
    for bad in ("2/2", "1", "a/b", "-1/2"):
        with pytest.raises(ValueError, match="--shard"):
            ablate_mod.parse_shard(bad)
    argv = ["ablate", "--root", str(synth_root), "--out", str(tmp_path / "g"), "--shard", "3/2"]
    assert main(argv) == 2 and ran == ["b_s0", "a_s1", "c_s1"]  # refused: nothing ran


def test_merge_tabulates_cells_finished_in_other_grid_folders(synth_root, tmp_path):
    """--merge: cells finished in other grid folders (shards without shared storage) join the
    table; a cell finished under --out is read from there; a missing folder is an error."""
    from ddlvad.cli import main
    from ddlvad.experiments.sweep import collect as sweep_collect

    def finish(folder, name, auc):
        d = folder / name
        d.mkdir(parents=True)
        (d / "metrics.json").write_text(
            json.dumps({"frame_auc_micro": auc, "frame_auc_macro": auc})
        )
        (d / "train_summary.json").write_text(json.dumps({"seconds": 60.0}))

    a, b = tmp_path / "a", tmp_path / "b"
    finish(a, "c3dsu_none_s0", 0.8)
    finish(a, "c3dsu_dynamic_s0", 0.9)
    finish(b, "c3dsu_dynamic_s0", 0.5)  # shadowed by a's
    finish(b, "c3dsu_none_s1", 0.7)
    base = tiny_config(synth_root, tmp_path / "cache")
    kw = {"models": ("c3dsu",), "modes": ("none", "dynamic"), "seeds": 2, "train": False}
    doc = ablate(base, a, merge=[b], progress=False, **kw)
    got = {(r["mode"], r["seed"]): (r["auc"], Path(r["run"]).parent.name) for r in doc["cells"]}
    assert got == {("none", 0): (0.8, "a"), ("none", 1): (0.7, "b"), ("dynamic", 0): (0.9, "a")}
    assert doc["summary"]["c3dsu"]["none"]["n"] == 2
    assert len(ablate(base, a, progress=False, **kw)["cells"]) == 2  # without --merge
    finish(b, "x_s1", 0.6)
    rows = sweep_collect([a, b], {"x": {}}, 2)
    assert [(r["cell"], r["seed"], r["frame_auc_micro"]) for r in rows] == [("x", 1, 0.6)]
    argv = ["ablate", "--root", str(synth_root), "--out", str(a), "--collect-only"]
    assert main([*argv, "--merge", str(tmp_path / "nowhere")]) == 2


def test_merge_reads_cells_recorded_in_an_earlier_ablation_json(synth_root, tmp_path, capsys):
    """--merge FILE: the cells of an earlier ablation.json fill what no folder holds (its run
    folders may be gone), marked with the file and command they came from; a file that is not
    an ablation.json is an error naming it."""
    import shutil

    from ddlvad.cli import main

    a, b = tmp_path / "a", tmp_path / "b"
    for folder, name, auc in [(a, "c3dsu_none_s0", 0.8), (b, "c3dsu_none_s0", 0.3)]:
        d = folder / name
        d.mkdir(parents=True)
        m = {"frame_auc_micro": auc, "frame_auc_macro": auc}
        (d / "metrics.json").write_text(json.dumps(m))
        (d / "train_summary.json").write_text(json.dumps({"seconds": 60.0}))
    (b / "c3dsu_dynamic_s1").mkdir()
    metrics = {"frame_auc_micro": 0.5, "frame_auc_macro": 0.4, "checkpoint": {"bn": "clean"}}
    (b / "c3dsu_dynamic_s1" / "metrics.json").write_text(json.dumps(metrics))
    (b / "c3dsu_dynamic_s1" / "train_summary.json").write_text(json.dumps({"sigma": 0.6}))
    base = tiny_config(synth_root, tmp_path / "cache")
    kw = {"models": ("c3dsu",), "modes": ("none", "dynamic"), "seeds": 2, "train": False}
    ablate(base, b, command="ddlvad ablate on b", progress=False, **kw)
    for d in b.iterdir():  # the run folders are gone; b/ablation.json remains
        if d.is_dir():
            shutil.rmtree(d)
    record = b / "ablation.json"
    doc = json.loads(record.read_text())
    doc["cells"][-1]["run"] = None  # as in a record transcribed from notes
    record.write_text(json.dumps(doc))
    doc = ablate(base, a, merge=[record], progress=False, **kw)
    got = {(r["mode"], r["seed"]): (r["auc"], r.get("from")) for r in doc["cells"]}
    assert got == {("none", 0): (0.8, None), ("dynamic", 1): (0.5, str(record))}
    recorded = doc["cells"][1]
    assert (recorded["bn"], recorded["sigma"], recorded["command"]) == (
        "clean",
        0.6,
        "ddlvad ablate on b",
    )
    md = (a / "ablation.md").read_text()
    assert f"- {record}: `ddlvad ablate on b`" in md
    assert "| c3dsu DDL | 1 | 50.00 | 40.00 | clean | 0.600 | — |" in md
    # the merged table is itself a record: merged again, its cells keep their first source
    again = ablate(base, tmp_path / "c", merge=[a / "ablation.json"], progress=False, **kw)
    assert [r.get("from") for r in again["cells"]] == [str(a / "ablation.json"), str(record)]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"cells": [{"model": "c3dsu"}]}))
    with pytest.raises(ValueError, match="bad.json: expected an ablation.json"):
        ablate(base, a, merge=[bad], progress=False, **kw)
    argv = ["ablate", "--root", str(synth_root), "--out", str(a), "--collect-only"]
    assert main([*argv, "--merge", str(bad)]) == 2
    assert main([*argv, "--merge", str(record)]) == 0
    sweep_file = tmp_path / "sweep.yaml"
    sweep_file.write_text("x: {train.lr: 0.001}\n")  # a valid sweep: only the --merge FILE fails
    capsys.readouterr()
    assert main([*argv, "--sweep", str(sweep_file), "--merge", str(record)]) == 2
    assert "with --sweep, only grid folders merge" in capsys.readouterr().err
    assert main([*argv, "--sweep", str(sweep_file)]) == 0
