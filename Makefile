# Quick start on a fresh machine: `make test` or `make train`. Each sets up what it needs.
VENV   ?= .venv
PYTHON ?= python3
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.unspat-mm-installed
CONFIG ?= configs/unspat_synthetic.py

.PHONY: setup test train clean-venv

$(STAMP): tools/install_env.sh requirements/*.txt setup.cfg pyproject.toml
	PYTHON=$(PYTHON) bash tools/install_env.sh $(VENV)
	touch $@

setup: $(STAMP)

test: setup
	$(PY) -m pytest tests

WORK_DIR ?= work_dirs/$(basename $(notdir $(CONFIG)))

train: setup
	$(PY) tools/train.py $(CONFIG) --work-dir $(WORK_DIR)
	$(PY) tools/test.py $(CONFIG) $$(cat $(WORK_DIR)/last_checkpoint) --work-dir $(WORK_DIR) --baseline

clean-venv:
	rm -rf $(VENV)
