"""The test suite. One OpenMP thread everywhere (set before torch is imported, inherited by
the commands tests start): tiny tensors run fastest on one thread, and a fixed count keeps
``ddlvad.scoring.threads`` from following the machine's load during tests."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
