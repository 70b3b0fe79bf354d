# Every target works on a fresh machine: `make setup` builds .venv (torch CPU, the pip-only ROS 2 stack,
# vision_msgs/tf2_msgs built from their .msg files, this package in editable mode).
VENV ?= .venv
PY := $(VENV)/bin/python
SIMDISTILL := $(VENV)/bin/simdistill
DEMO_DIR ?= out/demo

.PHONY: setup test lint demo bench reproduce faults clean

setup:
	bash tools/setup_env.sh $(VENV)

test: setup
	@echo "[test] the whole suite: about 10-20 min on 2 cores (pytest prints a dot per passed test)"
	$(PY) -m pytest -q test

lint: setup
	$(VENV)/bin/ruff check simdistill_ros test launch tools

demo: setup
	bash tools/demo.sh $(DEMO_DIR)

bench: setup
	$(PY) -m simdistill_ros.bench

reproduce: setup
	bash tools/reproduce.sh

faults: setup  # break inputs on purpose; prints case, alive/exit code, outcome, logged reason
	$(PY) tools/faults.py

clean:
	rm -rf build install log out .pytest_cache
