"""The README and docs/ cannot drift from the product: every ``ddlvad ...`` command they show
parses with the real parser (parse only: nothing runs, no torch is imported), every ``make``
target they name exists, every internal link (file and ``#anchor``) resolves, and every figure
in the README's tables is one that docs/results.md records."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from ddlvad.cli import make_parser

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RESULTS = ROOT / "docs" / "results.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^ *```[^\n]*\n(.*?)^ *```", re.S | re.M)  # also indented in a list
INLINE = re.compile(r"(?<!`)`(ddlvad [^`]+)`(?!`)")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
PROGRAM = re.compile(r"^(?:\$ )?(?:\S*/)?ddlvad(?= |$)")


def commands(text: str) -> list[str]:
    """The ``ddlvad`` command lines of a markdown text: lines of fenced code blocks that
    start with ``ddlvad`` (or ``.venv/bin/ddlvad``, ``$ ddlvad``; a trailing ``\\`` joins
    the next line), and inline code spans that start with ``ddlvad ``."""
    found = []
    for block in FENCE.findall(text):
        line = ""
        for raw in block.splitlines():
            line += raw.strip()
            if line.endswith("\\"):
                line = line[:-1].rstrip() + " "
                continue
            if PROGRAM.match(line):
                found.append(PROGRAM.sub("ddlvad", line))
            line = ""
    found += INLINE.findall(text)
    return found


def parse_error(command: str) -> str | None:
    """None when ``command`` parses with ``ddlvad``'s parser, else argparse's message. A
    bare verb (``ddlvad test`` in a sentence) only has to be a verb."""
    argv = shlex.split(command, comments=True)[1:]
    if len(argv) == 1 and not argv[0].startswith("-"):
        verbs = make_parser()._subparsers._group_actions[0].choices
        return None if argv[0] in verbs else f"{argv[0]!r} is not a ddlvad verb"
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            make_parser().parse_args(argv)
    except SystemExit as e:
        if e.code:  # --help exits 0
            return err.getvalue().strip().splitlines()[-1]
    return None


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text())
    seen: dict[str, int] = {}
    out = set()
    for h in re.findall(r"^#{1,6} (.+)$", text, re.M):
        s = slug(h)
        out.add(s if s not in seen else f"{s}-{seen[s]}")
        seen[s] = seen.get(s, 0) + 1
    return out


def broken_links(page: Path) -> list[str]:
    bad = []
    for target in LINK.findall(FENCE.sub("", page.read_text())):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        dest = (page.parent / file).resolve() if file else page
        if not dest.exists():
            bad.append(f"{page.name}: {target} (no {dest})")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{page.name}: {target} (no heading #{anchor} in {dest.name})")
    return bad


def test_the_checks_can_fail():
    assert parse_error("ddlvad test --run R --patch 8") is None
    assert "unrecognized arguments: --ptach" in parse_error("ddlvad test --run R --ptach 8")
    assert "invalid choice" in parse_error("ddlvad tset --run R")
    assert "not a ddlvad verb" in parse_error("ddlvad tset") and not parse_error("ddlvad test")
    assert parse_error("ddlvad predict --help") is None
    text = (
        "```bash\nddlvad info \\\n  --root D   # a comment\n```\n"
        "1. step\n\n   ```\n   $ ddlvad demo\n   ```\n`ddlvad models`"
    )
    assert commands(text) == ["ddlvad info --root D   # a comment", "ddlvad demo", "ddlvad models"]
    assert slug("Shipped `ped2` model: 95.00?") == "shipped-ped2-model-9500"


def test_every_page_shows_commands():
    assert len(commands(README.read_text())) >= 10
    assert RESULTS.is_file() and (ROOT / "docs" / "live.md").is_file()


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_ddlvad_command_parses(page):
    bad = [f"{c}\n    -> {e}" for c in commands(page.read_text()) if (e := parse_error(c))]
    assert not bad, f"{page.name}: commands the parser refuses:\n" + "\n".join(bad)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_internal_links_resolve(page):
    assert not broken_links(page)


def test_make_targets_in_the_docs_exist():
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
    named = {m for p in PAGES for m in re.findall(r"`make ([\w-]+)", p.read_text())}
    assert {"demo", "test"} <= named and named <= targets, named - targets


def figures(line: str) -> list[str]:
    """Numbers with a fraction (AUCs, seconds per step) and durations (``49-52 min``)."""
    return re.findall(r"\d+(?:\.\d+)?(?:-\d+(?:\.\d+)?)? (?:min|s)\b|\d+\.\d+", line)


def test_readme_figures_are_recorded_in_results():
    results = RESULTS.read_text()
    rows = [ln for ln in README.read_text().splitlines() if ln.startswith("|")]
    found = [f for ln in rows for f in figures(ln)]
    assert len(found) >= 10
    missing = sorted({f for f in found if f not in results})
    assert not missing, f"README figures not in docs/results.md: {missing}"
