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


"""test/install_ros_extras.py: the set-up step that builds the ROS pieces pip lacks."""

import os
from pathlib import Path
import subprocess
import sys

from helpers import SHARED
import pytest

SCRIPT = Path(__file__).resolve().parent / 'install_ros_extras.py'


def _run(*args, ci=None):
    env = dict(os.environ)
    env.pop('CI', None)
    if ci is not None:
        env['CI'] = ci
    return subprocess.run([sys.executable, str(SCRIPT), *args], env=env, capture_output=True,
                          text=True, timeout=60)


def test_without_the_shared_sources_it_says_so_and_the_tests_skip(tmp_path):
    done = _run('--shared', str(tmp_path / 'absent'))
    assert done.returncode == 0
    assert 'skipped:' in done.stdout and 'absent' in done.stdout


def test_with_ci_true_a_missing_prerequisite_fails(tmp_path):
    done = _run('--shared', str(tmp_path / 'absent'), ci='true')
    assert done.returncode == 1
    assert 'error:' in done.stderr and str(tmp_path / 'absent' / 'ros') in done.stderr


def test_an_incomplete_copy_is_a_missing_prerequisite_too(tmp_path):
    (tmp_path / 'ros' / 'vision_msgs').mkdir(parents=True)
    done = _run('--shared', str(tmp_path), ci='true')
    assert done.returncode == 1 and 'composition_interfaces is absent' in done.stderr


def test_a_second_run_on_the_same_sources_is_a_no_op():
    if not (SHARED / 'ros').is_dir():
        pytest.skip(f'{SHARED / "ros"} is absent: nothing was built to be up to date')
    done = _run('--shared', str(SHARED))
    assert done.returncode == 0 and 'up to date' in done.stdout
