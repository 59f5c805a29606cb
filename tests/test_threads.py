import os
import subprocess
import sys

import pytest
import torch

from ddlvad.scoring import threads
from ddlvad.scoring.threads import CpuLoad, ThreadGovernor, free_cores


@pytest.fixture(autouse=True)
def one_thread_after():
    yield
    torch.set_num_threads(1)
    threads._GOVERNOR = None


@pytest.mark.parametrize(
    ("cpus", "others", "cap", "want"),
    [(2, 0.0, 2, 2), (2, 0.4, 2, 2), (2, 0.6, 2, 1), (2, 1.9, 2, 1), (4, 1.4, 4, 3), (4, 0, 2, 2)],
)
def test_free_cores_counts_a_core_more_than_half_busy_as_taken(cpus, others, cap, want):
    assert free_cores(cpus, others, cap) == want
    assert free_cores(cpus, None, cap) == min(cpus, cap)  # /proc/stat unreadable


def test_cpu_load_leaves_out_this_process_own_time(monkeypatch):
    clock, ticks, own = [100.0], [0], [0.0]
    monkeypatch.setattr(threads.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(threads, "_busy_ticks", lambda cpus, nice: ticks[0])
    monkeypatch.setattr(threads, "_own_seconds", lambda: own[0])
    load = CpuLoad()
    # 2 s: 300 busy ticks (3 CPU-seconds at 100 Hz), 1 of them this process's
    clock[0], ticks[0], own[0] = 102.0, int(3 * load.hz), 1.0
    assert load.others() == pytest.approx(1.0)
    clock[0] += 1.0  # nothing more busy than this process itself
    own[0] += 1.0
    ticks[0] += int(load.hz)
    assert load.others() == pytest.approx(0.0)


def test_busy_ticks_reads_proc_stat_of_the_allowed_cpus():
    if not os.path.exists("/proc/stat"):
        pytest.skip("no /proc/stat on this system")
    cpus = threads.allowed_cpus()
    a = threads._busy_ticks(cpus, False)
    b = threads._busy_ticks(cpus, True)
    assert a is not None and 0 < a <= b


def test_governor_is_fixed_by_a_request_or_omp_num_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    g = ThreadGovernor(0)
    assert g.fixed and g.load is None
    g = ThreadGovernor(2)
    assert g.fixed and g.threads == 2


def test_governor_follows_the_load(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    busy = [0.0]
    monkeypatch.setattr(CpuLoad, "others", lambda self: busy[0])
    monkeypatch.setattr(threads, "allowed_cpus", lambda: [0, 1, 2, 3])
    torch.set_num_threads(4)  # torch's default on a 4-core machine: the cap
    g = ThreadGovernor(0, period=0.0, sample=0.0)
    assert not g.fixed and g.threads == 4
    busy[0] = 2.8  # other processes took about 3 cores
    g.tick()
    assert g.threads == 1
    busy[0] = 1.0
    threads._GOVERNOR = g
    threads.tick()
    assert g.threads == 3


def test_the_command_line_makes_openmp_wait_passively_before_torch_loads():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    code = (
        "import os, sys; from ddlvad.cli import main; main(['models']); "
        "print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.split()[-2:] == ["PASSIVE", "False"]
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.split()[-2] == "ACTIVE"  # the user's choice stays
