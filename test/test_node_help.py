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


"""The node's own command line: --help prints and exits, a stray argument is refused."""

from pathlib import Path
import re
import subprocess
import sys

from bisenet_ros.node.interface import CAMERA_OUTPUTS, CLASS_INFO, EXECUTABLE
from bisenet_ros.node.parameters import LIVE_PARAMETERS, STRUCTURAL_PARAMETERS
from bisenet_ros.node.usage import split_ros_arguments
import pytest
from ros_helpers import random_domain_id, ros_environment

REPO = Path(__file__).resolve().parents[1]
COMMANDS = {
    'executable': [str(Path(sys.executable).with_name(EXECUTABLE))],
    'module': [sys.executable, '-m', 'bisenet_ros.node'],
}


def _run(command, *arguments):
    # A node would never exit by itself: the timeout is what fails a started one.
    return subprocess.run([*COMMANDS[command], *arguments], cwd=REPO, capture_output=True,
                          text=True, timeout=30, env=ros_environment(random_domain_id()))


@pytest.mark.parametrize('command', sorted(COMMANDS))
def test_help_prints_usage_parameters_with_defaults_and_topics(command):
    done = _run(command, '--help')
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert text.startswith('usage: ') and '--ros-args' in text.splitlines()[0]
    for name in ('autostart', *STRUCTURAL_PARAMETERS, *LIVE_PARAMETERS):
        # An entry runs until the next line indented by two spaces only, or a blank line.
        entry = re.search(rf'\n  {name} +(.*?)(?=\n  \S|\n\n)', text, re.DOTALL)
        assert entry and '(default: ' in ' '.join(entry.group(1).split()), name
    assert "(default: 'auto'; one of: auto, torch, onnxruntime, openvino)" in ' '.join(
        text.split())
    for topic in ('image', 'camera_info', *CAMERA_OUTPUTS, CLASS_INFO, '/diagnostics'):
        assert f'\n  {topic} (' in text, topic
    assert 'configured' not in done.stderr and done.stderr == ''


def test_help_is_found_beside_ros_arguments_and_short_form():
    done = _run('module', '--ros-args', '-p', 'threads:=1', '--', '-h')
    assert done.returncode == 0 and done.stdout.startswith('usage: python -m bisenet_ros.node')


def test_a_stray_argument_is_refused_in_one_line_without_starting_a_node():
    done = _run('executable', '-p', 'threads:=1')
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if 'error' in line]
    assert errors == [f'{EXECUTABLE}: error: unrecognized arguments: -p threads:=1 (node '
                      'parameters and remaps go after --ros-args; --help lists them)']
    assert 'Traceback' not in done.stderr


def test_only_arguments_outside_ros_args_are_the_nodes_own():
    assert split_ros_arguments(['--ros-args', '-p', 'a:=1', '-r', 'x:=y']) == []
    assert split_ros_arguments(['--help', '--ros-args', '-p', 'a:=1', '--', 'b']) == [
        '--help', 'b']
