"""CPU threads for torch on a shared machine: how many, and how OpenMP threads wait.

torch's default, one intra-op thread per physical core, each spinning while it waits for the
others, collapses when other processes hold cores (a live detector beside a training, two
trainings): a thread that lost its core holds every parallel region up while the others spin.

- ``prepare_openmp``: ``OMP_WAIT_POLICY=PASSIVE`` (idle threads sleep instead of spinning)
  unless the environment sets it; it only works before torch is imported (the command line
  calls it first, before any verb runs).
- ``CpuLoad``: how many cores of this process's CPU set (``os.sched_getaffinity``) other
  processes keep busy, from /proc/stat (a niced process's time counts only for niced
  processes; this process's own time is left out, its data loader workers' is not).
- ``ThreadGovernor`` / ``govern`` / ``tick``: the intra-op thread count. Fixed where one is
  asked for (``--threads``, ``train.threads``, ``OMP_NUM_THREADS``); else the free cores of
  the CPU set (at least 1, at most torch's default), measured at the start and again every
  ``PERIOD`` seconds while the work runs (the training loop and the scoring engine tick).

Nothing here imports torch at import time (``ddlvad --help`` imports no torch).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

WAIT_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}
PERIOD = 10.0  # seconds between load checks while work runs
SAMPLE = 0.25  # seconds of /proc/stat sampled before the first choice


def prepare_openmp() -> None:
    """Set ``WAIT_ENV`` where the environment leaves it unset (before torch is imported)."""
    for k, v in WAIT_ENV.items():
        os.environ.setdefault(k, v)


def allowed_cpus() -> list[int]:
    """The CPUs this process may run on."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def _busy_ticks(cpus: list[int], with_nice: bool) -> int | None:
    """Busy clock ticks so far (user, system, irq, softirq; nice too when ``with_nice``)
    summed over ``cpus``; None where /proc/stat cannot be read."""
    want = {f"cpu{c}" for c in cpus}
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    total = 0
    for line in lines:
        name, *v = line.split()
        if name in want:
            user, nice, system, _idle, _iowait, irq, softirq = (int(x) for x in v[:7])
            total += user + system + irq + softirq + (nice if with_nice else 0)
    return total


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system


class CpuLoad:
    """Cores of this process's CPU set kept busy by other processes, between calls."""

    def __init__(self) -> None:
        self.cpus = allowed_cpus()
        self.hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.niced = _nice() > 0  # a niced process gives way to niced work only
        self.last = self._snapshot()

    def _snapshot(self) -> tuple[float, int | None, float]:
        return time.monotonic(), _busy_ticks(self.cpus, self.niced), _own_seconds()

    def others(self) -> float | None:
        """Cores busy with other work since the last call (None: /proc/stat unreadable)."""
        (t0, b0, o0), (t1, b1, o1) = self.last, self._snapshot()
        self.last = (t1, b1, o1)
        if b0 is None or b1 is None or t1 <= t0:
            return None
        busy = (b1 - b0) / self.hz - (o1 - o0)  # seconds of CPU other processes used
        return max(0.0, busy / (t1 - t0))


def _nice() -> int:
    try:
        return os.getpriority(os.PRIO_PROCESS, 0)
    except (AttributeError, OSError):
        return 0


def free_cores(cpus: int, others: float | None, cap: int) -> int:
    """Threads for ``cpus`` allowed CPUs of which ``others`` are busy: at least 1, at most
    ``cap``; a core more than half busy counts as taken."""
    if others is None:
        return max(1, min(cap, cpus))
    return max(1, min(cap, int(cpus - others + 0.5)))


class ThreadGovernor:
    """torch's intra-op thread count: ``requested`` (> 0) or ``OMP_NUM_THREADS`` fix it;
    else it follows the free cores, checked at ``tick`` every ``period`` seconds."""

    def __init__(self, requested: int = 0, period: float = PERIOD, sample: float = SAMPLE):
        import torch

        self.torch, self.period = torch, period
        self.fixed = requested > 0 or "OMP_NUM_THREADS" in os.environ
        if requested > 0:
            torch.set_num_threads(requested)
        self.cap = torch.get_num_threads()  # torch's default: one per physical core
        self.load = None if self.fixed else CpuLoad()
        self.next = 0.0
        if self.load is not None:
            time.sleep(sample)
            self.tick()

    @property
    def threads(self) -> int:
        return self.torch.get_num_threads()

    def tick(self) -> None:
        """Re-check the load when ``period`` has passed; change the thread count if needed."""
        now = time.monotonic()
        if self.load is None or now < self.next:
            return
        self.next = now + self.period
        n = free_cores(len(self.load.cpus), self.load.others(), self.cap)
        if n != self.torch.get_num_threads():
            self.torch.set_num_threads(n)


_GOVERNOR: ThreadGovernor | None = None


def govern(requested: int = 0) -> ThreadGovernor:
    """Install this process's thread governor (see ``ThreadGovernor``); ``tick`` drives it."""
    global _GOVERNOR
    _GOVERNOR = ThreadGovernor(requested)
    return _GOVERNOR


def tick() -> None:
    """Let the installed governor re-check the load (nothing when none is installed)."""
    if _GOVERNOR is not None:
        _GOVERNOR.tick()
