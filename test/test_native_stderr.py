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

"""Native stderr held during a step: shown when it succeeds, hidden when it fails."""

import subprocess
import sys

import pytest

SCRIPT = """
import os, sys
from bisenet_ros.native_stderr import held_native_stderr
try:
    with held_native_stderr():
        os.write(2, b'native line\\n')
        print('python line', file=sys.stderr)
        if sys.argv[1] == 'fail':
            raise RuntimeError('refused')
except RuntimeError:
    print('one line of ours', file=sys.stderr)
os.write(2, b'native after\\n')
"""


@pytest.mark.parametrize('outcome, expected', [
    ('succeed', ['python line', 'native line', 'native after']),
    ('fail', ['python line', 'one line of ours'])])
def test_native_lines_are_shown_after_success_and_hidden_after_failure(outcome, expected):
    done = subprocess.run([sys.executable, '-c', SCRIPT, outcome], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == expected
