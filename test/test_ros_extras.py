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
import tempfile

from helpers import SHARED
import pytest

SCRIPT = Path(__file__).resolve().parent / 'install_ros_extras.py'


def _run(*args, ci=None, prefix=None):
    env = dict(os.environ)
    env.pop('CI', None)
    if ci is not None:
        env['CI'] = ci
    # The package is indexed under a prefix of the test's own, not in the venv running it.
    prefix = prefix or Path(tempfile.mkdtemp(prefix='bisenet_prefix_'))
    return subprocess.run([sys.executable, str(SCRIPT), '--prefix', str(prefix), *args],
                          env=env, capture_output=True, text=True, timeout=60)


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


def test_the_package_is_indexed_as_colcon_installs_it_and_activate_sets_the_prefix(tmp_path):
    repo = SCRIPT.parents[1]
    (tmp_path / 'bin').mkdir()
    (tmp_path / 'bin' / 'activate').write_text('VIRTUAL_ENV="%s"\nexport VIRTUAL_ENV\n' % tmp_path)
    (tmp_path / 'bin' / 'segmentation_node').write_text('#!/bin/sh\n')
    for _ in range(2):  # a second run changes nothing
        done = _run('--shared', str(tmp_path / 'absent'), prefix=tmp_path)
        assert done.returncode == 0, done.stderr
    share = tmp_path / 'share'
    assert (share / 'ament_index' / 'resource_index' / 'packages' / 'bisenet_ros').is_file()
    assert (share / 'bisenet_ros' / 'package.xml').resolve() == repo / 'package.xml'
    for name in ('segmentation.launch.py', 'multi_camera.launch.py'):
        assert (share / 'bisenet_ros' / 'launch' / name).resolve() == repo / 'launch' / name
    assert (share / 'bisenet_ros' / 'config' / 'segmentation.yaml').is_file()
    executable = tmp_path / 'lib' / 'bisenet_ros' / 'segmentation_node'
    assert executable.resolve() == tmp_path / 'bin' / 'segmentation_node'
    activate = (tmp_path / 'bin' / 'activate').read_text()
    assert activate.count('AMENT_PREFIX_PATH=') == 1
    sourced = subprocess.run(
        ['bash', '-c', f'. {tmp_path}/bin/activate; . {tmp_path}/bin/activate; '
         'echo "$AMENT_PREFIX_PATH"'], env={'PATH': os.environ['PATH'],
                                            'AMENT_PREFIX_PATH': '/opt/ros/kilted'},
        capture_output=True, text=True, check=True)
    assert sourced.stdout.strip() == f'{tmp_path}:/opt/ros/kilted'
