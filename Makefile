# Every target works on a fresh machine: `make setup` builds .venv (torch CPU, the pip-only ROS 2 stack of
# ROS_DISTRO, vision_msgs/tf2_msgs built from their .msg files, this package in editable mode).
# ROS_DISTRO=jazzy (the default, LTS) or kilted: which ROS 2 wheels; one distribution per venv.
VENV ?= .venv
ROS_DISTRO ?= jazzy
PY := $(VENV)/bin/python
SIMDISTILL := $(VENV)/bin/simdistill
DEMO_DIR ?= out/demo

.PHONY: setup test test-ros lint demo bench reproduce faults mutants clean

setup:
	ROS_DISTRO=$(ROS_DISTRO) bash tools/setup_env.sh $(VENV)

test: setup
	@echo "[test] the whole suite: about 12 min on 2 cores, 16-19 min on a busy machine (pytest prints a dot per passed test)"
	$(PY) -m pytest -q --durations=15 test

# The tests that start rclpy processes or write ROS 2 messages: CI runs them on a second distribution
# (`make test-ros ROS_DISTRO=kilted VENV=.venv-kilted`) after the whole suite on the default one.
ROS_TESTS := test/test_interfaces.py test/test_detector_node.py test/test_node_help.py test/test_node_parameters.py \
	test/test_live_time_node.py test/test_replay_node.py test/test_frames_pointcloud.py test/test_detection_core.py \
	test/test_bags.py test/test_live.py
test-ros: setup
	@echo "[test-ros] the ROS 2 process tests on $(ROS_DISTRO): about 3 min on 2 idle cores, 5 min on a busy machine"
	$(PY) -m pytest -q $(ROS_TESTS)

lint: setup
	$(VENV)/bin/ruff check simdistill_ros test launch tools

demo: setup
	bash tools/demo.sh $(DEMO_DIR)

bench: setup
	$(PY) tools/bench.py

reproduce: setup
	bash tools/reproduce.sh

faults: setup  # break inputs on purpose; prints case, alive/exit code, outcome, logged reason
	$(PY) tools/faults.py

# Mutation testing of the maths modules (config: [tool.mutmut] in pyproject.toml); mutmut is installed here,
# not by `make setup`. One thread per forked mutant; MUTANT_CHILDREN parallel mutants (default: the cores).
MUTANT_CHILDREN ?= $(shell nproc)
mutants: setup
	$(PY) -m pip install -q -r requirements-mutants.txt
	rm -rf mutants
	OMP_NUM_THREADS=1 $(VENV)/bin/mutmut run --max-children $(MUTANT_CHILDREN)
	$(VENV)/bin/mutmut results

clean:
	rm -rf build install log out .pytest_cache mutants
