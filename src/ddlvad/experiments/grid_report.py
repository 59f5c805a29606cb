"""``ddlvad report --ablation DIR``: an ablation grid (``ddlvad ablate``'s ablation.json) as
one self-contained DIR/report.html: the grid with spread beside the paper, every finished
run, and the DDL cells' sigma trajectories overlaid on one axis (the page's parts from
``ddlvad.report.page``)."""

from __future__ import annotations

import html
import json
from pathlib import Path

from ddlvad.experiments.ablate import ABLATION_JSON, grid_rows, run_rows, sigma_overlay
from ddlvad.io import atomic_write_text
from ddlvad.report.page import img_tag, page
from ddlvad.rundir import REPORT


def html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def build_grid_report(out: str | Path) -> Path:
    """Write ``out``/report.html from ``out``/ablation.json; returns its path."""
    out = Path(out)
    path = out / ABLATION_JSON
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no ablation.json; run `ddlvad ablate --out {out}` "
            "(add --collect-only to tabulate finished cells without training)"
        )
    doc = json.loads(path.read_text())
    rows, dataset = doc["cells"], doc.get("dataset", "")
    models = doc.get("models") or sorted({r["model"] for r in rows})
    modes = doc.get("modes") or sorted({r["mode"] for r in rows})
    parts = [
        f"<h1>Ablation on {html.escape(dataset or 'unnamed data')}: frame-level micro AUC (%)</h1>",
        f"<p>Command: <code>{html.escape(doc.get('command', ''))}</code></p>",
        "<p>mean ± std over seeds, spread = max - min; n = seeds finished.</p>",
        html_table(*grid_rows(doc["summary"], models, modes, dataset)),
        "<h2>Every run</h2>",
        html_table(*run_rows(rows)),
        "<h2>Sigma trajectories</h2>",
    ]
    png = sigma_overlay(out, rows)
    parts.append(
        img_tag(png, "sigma trajectories")
        if png
        else '<p class="note">no finished run with a learned sigma yet</p>'
    )
    return atomic_write_text(out / REPORT, page(f"ablation {out.name}", parts))
