# Fresh machine: `make demo` or `make test` create .venv, install, and run.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch first. On the standard PyPI index this pin is, on Linux x86_64, the CUDA build (several GB
# of NVIDIA libraries; it runs on CPUs too). CPU only: make demo TORCH_SPEC=torch==2.13.0+cpu
# PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu (command-line variables reach pip).
TORCH_SPEC ?= torch==2.13.0
# The core install runs every preset (OC-SORT included); onnx: export and onnxruntime; dev: tests;
# serve: the serve verb's web dashboard.
EXTRAS ?= onnx,dev,serve

.PHONY: install demo test lint smoke-ped2 zoo-ped2 clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/ddlvad demo --out runs/demo

test: install
	$(VENV)/bin/ruff check src tests bench
	$(PY) -m pytest tests

lint: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

# Real-data smoke step (CI runs it when ../shared/datasets/ped2 exists): 2 videos, tiny size.
PED2 ?= ../shared/datasets/ped2
SMOKE ?= /tmp/ddlvad-smoke
smoke-ped2: install
	rm -rf $(SMOKE)
	$(VENV)/bin/ddlvad train --data ped2 --root $(PED2) --preset tiny --out $(SMOKE)/run --quiet \
	  --set data.max_videos=2 train.max_steps=20 data.cache_dir=$(SMOKE)/cache
	$(VENV)/bin/ddlvad test --run $(SMOKE)/run --quiet

# Real-data regression check (CI, when ../shared/datasets/ped2 exists): the shipped ped2 model
# must reproduce its card's micro AUC to 1e-4 on the full Ped2 test split.
zoo-ped2: install
	rm -rf $(SMOKE)/zoo
	$(VENV)/bin/ddlvad test --model ped2 --data ped2 --root $(PED2) --out $(SMOKE)/zoo --quiet \
	  --set data.cache_dir=$(SMOKE)/cache
	$(PY) -m ddlvad.zoo check ped2 $(SMOKE)/zoo/metrics.json

clean:
	rm -rf $(VENV) runs .pytest_cache
