"""Start-up time of the command-line tool: ``ddlvad --help`` and ``ddlvad VERB --help``.

    OMP_NUM_THREADS=1 taskset -c 1 python bench/cli_startup.py [--repeat 5]

Runs each command as a fresh subprocess (the ``ddlvad`` script next to this Python, else
``python -m ddlvad``) and prints the median and the range of the wall times, then which heavy
modules (torch, sklearn, ...) building the parser imports, and the slowest imports from
``python -X importtime``.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

HEAVY = ("torch", "sklearn", "scipy", "matplotlib", "cv2", "onnxruntime", "trackers")
PROBE = (
    "import sys\n"
    "from ddlvad.cli import make_parser\n"
    "make_parser()\n"
    f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules) or 'none')\n"
)


def entry() -> list[str]:
    """The installed console script, else ``python -m ddlvad``."""
    script = Path(sys.executable).parent / "ddlvad"
    return [str(script)] if script.exists() else [sys.executable, "-m", "ddlvad"]


def verbs() -> list[str]:
    """The verbs of ``ddlvad``, asked of a fresh process (this one stays free of ddlvad)."""
    code = (
        "from ddlvad.cli import make_parser; print(*make_parser()._subparsers._actions[-1].choices)"
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()


def wall(cmd: list[str], repeat: int) -> list[float]:
    """Wall times in seconds of ``repeat`` runs of ``cmd`` (output discarded)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t0)
    return times


def slowest_imports(n: int) -> list[tuple[float, str]]:
    """The ``n`` largest cumulative import times (s) while building the parser."""
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", PROBE], capture_output=True, text=True
    ).stderr
    rows = []
    for line in err.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]) / 1e6, parts[2].rstrip()))
    return sorted(rows, reverse=True)[:n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="runs per command")
    args = ap.parse_args()
    base = entry()
    print(f"python {sys.version.split()[0]}; command: {shlex.join(base)}")
    for extra in ([], *([v] for v in verbs())):
        cmd = [*base, *extra, "--help"]
        t = wall(cmd, args.repeat)
        label = shlex.join(["ddlvad", *extra, "--help"])
        spread = f"(min {min(t):.3f}, max {max(t):.3f})"
        print(f"{label:<28} median {statistics.median(t):.3f} s  {spread}")
    heavy = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True)
    print(f"heavy modules imported by make_parser(): {heavy.stdout.strip() or heavy.stderr}")
    print("slowest imports (cumulative s):")
    for sec, name in slowest_imports(8):
        print(f"  {sec:7.3f}  {name.strip()}")


if __name__ == "__main__":
    main()
