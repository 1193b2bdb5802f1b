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
docs/node.md's quick start, run as written: the commands are read from the doc, not retyped.

Each line of the block after the marker comment runs in bash from the
repository root, in the environment its ``. .venv/bin/activate`` line gives
(plus LOCALHOST discovery on a domain of this test). A line ending in ``&``
starts in the background and is ended with Ctrl-C afterwards, which must end
it cleanly; every other line must exit 0, and print what its ``# prints:``
comment says, within a minute or two (a user waits for the node to come up
too).
"""

from pathlib import Path
import re
import subprocess

from helpers import needs_ros_extra
import pytest
from ros_helpers import LoggedCommand, random_domain_id, ros_environment, wait_until

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / 'docs' / 'node.md'
MARKER = '<!-- Run as written by test/test_node_doc.py'


def quick_start(text):
    """Return [(command, expected output or '')] of the block after the marker in ``text``."""
    block = re.search(r'```sh\n(.*?)```', text[text.index(MARKER):], re.DOTALL).group(1)
    lines = []
    for line in block.splitlines():
        command, _, comment = line.partition('#')
        expected = comment.strip()[len('prints:'):].strip() if 'prints:' in comment else ''
        if command.strip():
            lines.append((command.strip(), expected))
    return lines


def test_the_block_is_found_and_each_query_says_what_it_prints():
    lines = quick_start(DOC.read_text())
    assert lines[0] == ('. .venv/bin/activate', '')
    assert lines[1][0].startswith('ros2 launch bisenet_ros ') and lines[1][0].endswith('&')
    assert all(expected for command, expected in lines[2:] if ' get ' in command)


def _activated(command, domain):
    if not (REPO / '.venv' / 'bin' / 'activate').is_file():
        pytest.skip("docs/node.md's commands need the venv `make` builds (.venv)")
    done = subprocess.run(['bash', '-c', f'{command} && env -0'], cwd=REPO,
                          env=ros_environment(domain), capture_output=True, check=True)
    return dict(item.split('=', 1) for item in done.stdout.decode().split('\0') if '=' in item)


def _until_ok(command, expected, env):
    said = []

    def attempt():
        done = subprocess.run(['bash', '-c', command], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=60)
        said[:] = [done.stdout + done.stderr]
        return done.returncode == 0 and expected in done.stdout
    try:
        wait_until(attempt, 120, 1.0, f'`{command}` to print {expected!r}')
    except AssertionError as error:
        raise AssertionError(f'{error}; it last said:\n{said[0]}') from None


def test_the_quick_start_runs_as_written(tmp_path):
    needs_ros_extra('ros2cli.cli')
    needs_ros_extra('vision_msgs.msg')
    domain = random_domain_id()
    env, background = None, []
    try:
        for command, expected in quick_start(DOC.read_text()):
            if command.startswith('. '):
                env = _activated(command, domain)
            elif command.endswith('&'):
                log = tmp_path / f'background_{len(background)}.log'
                # exec: the Ctrl-C below then reaches the command itself, not a shell.
                background.append(LoggedCommand(['bash', '-c', f'exec {command[:-1]}'], env,
                                                log))
            else:
                _until_ok(command, expected, env)
        for process in background:
            assert process.interrupt(timeout=60) == 0, process.log()[-3000:]
    finally:
        for process in background:
            process.stop()
        if env is not None:
            subprocess.run(['bash', '-c', 'ros2 daemon stop'], env=env, capture_output=True,
                           timeout=60)
