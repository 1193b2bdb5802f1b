# Copyright 2026 The bisenet_ros Authors
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.


"""
The ``ros2`` command after ``make``, typed as a user types it, against a launched node.

The environment is what ``. .venv/bin/activate`` gives (AMENT_PREFIX_PATH
included). One ``ros2 launch bisenet_ros segmentation.launch.py`` with its
defaults serves the whole module; ``ros2 node``, ``lifecycle``, ``param`` and
``topic`` talk to it over DDS. The ``ros2`` daemon those commands start is
stopped at the end.
"""

import os
from pathlib import Path
import re
import signal
import subprocess
import sys

from bisenet_ros.node.interface import EXECUTABLE, NODE_NAME, PACKAGE
from helpers import needs_ros_extra
import pytest
from ros_helpers import (activated_environment, LoggedCommand, random_domain_id, wait_until)

NODE = f'/{NODE_NAME}'
ACTIVE = rf'\[{NODE_NAME}\]: active: segmenting'


@pytest.fixture(scope='module')
def env():
    """Return the activated venv's environment on a domain of this module."""
    needs_ros_extra('ros2cli.cli')
    needs_ros_extra('ros2launch.command.launch')
    needs_ros_extra('vision_msgs.msg')
    environment = activated_environment(random_domain_id())
    yield environment
    ros2(environment, 'daemon', 'stop')


def ros2(env, *arguments, timeout=60):
    """Run ``ros2 *arguments``; return the completed process (text output)."""
    return subprocess.run(['ros2', *arguments], env=env, capture_output=True, text=True,
                          timeout=timeout)


def until_ok(env, *arguments, expect='', timeout=60):
    """Run ``ros2 *arguments`` until it exits 0 with ``expect`` in its output; return that."""
    def attempt():
        done = ros2(env, *arguments)
        return done.stdout if done.returncode == 0 and expect in done.stdout else None
    return wait_until(attempt, timeout, 0.5, f"'ros2 {' '.join(arguments)}' to give {expect!r}")


@pytest.fixture(scope='module')
def launched(env, tmp_path_factory):
    """Return the running ``ros2 launch bisenet_ros segmentation.launch.py``, active."""
    log = tmp_path_factory.mktemp('ros2_launch') / 'launch.log'
    process = LoggedCommand(['ros2', 'launch', PACKAGE, 'segmentation.launch.py'], env, log)
    try:
        process.wait_for_log(ACTIVE, timeout=180)
        yield process
    finally:
        children = [int(pid) for pid in re.findall(r'process started with pid \[(\d+)\]',
                                                   process.log())]
        process.stop()
        for pid in children:  # launch ends them; this only cleans up after a failure
            if Path(f'/proc/{pid}').exists():
                os.kill(pid, signal.SIGKILL)


def test_activate_puts_the_venv_on_the_ament_prefix_path_once(env):
    twice = subprocess.run(
        ['bash', '-c', f'. "{sys.prefix}/bin/activate" && . "{sys.prefix}/bin/activate" && '
         'echo "$AMENT_PREFIX_PATH"'], env=env, capture_output=True, text=True, check=True)
    assert twice.stdout.strip().split(os.pathsep).count(sys.prefix) == 1
    assert env['AMENT_PREFIX_PATH'].split(os.pathsep)[0] == sys.prefix
    assert ros2(env, 'pkg', 'prefix', PACKAGE).stdout.strip() == sys.prefix
    assert EXECUTABLE in ros2(env, 'pkg', 'executables', PACKAGE).stdout


def test_ros2_run_help_exits_0_without_a_node(env):
    done = ros2(env, 'run', PACKAGE, EXECUTABLE, '--help', timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f'usage: {EXECUTABLE} ')
    assert 'overlay_alpha' in done.stdout and '/diagnostics' in done.stdout


def test_ros2_launch_starts_the_node_active(env, launched):
    assert NODE in until_ok(env, 'node', 'list', expect=NODE).split()
    assert until_ok(env, 'lifecycle', 'get', NODE).strip() == 'active [3]'


def test_ros2_param_set_and_get_a_live_parameter_and_refusals(env, launched):
    done = ros2(env, 'param', 'set', NODE, 'overlay_alpha', '0.7')
    assert done.stdout.strip() == 'Set parameter successful', done.stdout + done.stderr
    assert ros2(env, 'param', 'get', NODE, 'overlay_alpha').stdout.strip() == \
        'Double value is: 0.7'
    out_of_range = ros2(env, 'param', 'set', NODE, 'overlay_alpha', '3.0')
    said = out_of_range.stdout + out_of_range.stderr
    assert 'Setting parameter failed' in said and 'Max: 1.0' in said, said
    structural = ros2(env, 'param', 'set', NODE, 'backend', 'torch')
    said = structural.stdout + structural.stderr
    assert 'backend takes effect at configure' in said, said


def test_ros2_lifecycle_set_deactivates_and_activates(env, launched):
    done = ros2(env, 'lifecycle', 'set', NODE, 'deactivate')
    assert done.stdout.strip() == 'Transitioning successful', done.stdout + done.stderr
    assert ros2(env, 'lifecycle', 'get', NODE).stdout.strip() == 'inactive [2]'
    assert ros2(env, 'lifecycle', 'set', NODE, 'activate').stdout.strip() == \
        'Transitioning successful'
    assert ros2(env, 'lifecycle', 'get', NODE).stdout.strip() == 'active [3]'


def test_ros2_topic_echo_once_gets_the_latched_label_info(env, launched):
    done = ros2(env, 'topic', 'echo', '--once', '/label_info', timeout=60)
    assert done.returncode == 0, done.stderr
    assert 'class_name: road' in done.stdout


def test_ctrl_c_ends_the_launch_and_its_node(launched):
    children = [int(pid) for pid in re.findall(r'process started with pid \[(\d+)\]',
                                               launched.log())]
    assert launched.interrupt(timeout=60) == 0, launched.log()[-3000:]
    assert children and not any(Path(f'/proc/{pid}').exists() for pid in children)
