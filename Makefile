# bisenet_ros: set-up, tests and the first-run demo.
#   make demo   create .venv, install pinned dependencies, run the demo
#   make test   same set-up if needed, then the whole test suite (style checks included)

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Every ROS process we start stays on loopback.
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export PYTHONUNBUFFERED := 1
# The team's sample frames and datasets, for the demo and the benchmarks (never installed).
export BISENET_ROS_SHARED ?= $(abspath ../shared)

.PHONY: all demo test lint bench clean ros-extras

all: test

$(STAMP): setup.py constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first, pinned: an unpinned torch would pull a multi-GB CUDA build.
	$(PY) -m pip install -q -c constraints.txt torch
	$(PY) -m pip install -q -c constraints.txt -e '.[all,test]'
	touch $(STAMP)

# vision_msgs, composition_interfaces, launch, launch_ros, ros2cli (the `ros2` command) and
# rosidl_runtime_py, built from ../shared/ros (the registry lacks them), and bisenet_ros in the
# venv's ament index, which `. .venv/bin/activate` puts on AMENT_PREFIX_PATH; a no-op while
# their sources and constraints.txt are unchanged.
ros-extras: $(STAMP)
	$(PY) test/install_ros_extras.py

test: ros-extras
	$(PY) -m pytest -q -rs -p no:cacheprovider test

lint: $(STAMP)
	$(VENV)/bin/ament_flake8 bisenet_ros test launch setup.py
	$(VENV)/bin/ament_pep257 bisenet_ros test launch setup.py

demo: $(STAMP)
	$(PY) -m bisenet_ros.tools.demo $(if $(INPUT),--input $(INPUT)) $(if $(MODEL),--model $(MODEL))

bench: $(STAMP)
	$(PY) -m bisenet_ros.tools.bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info out
