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
Every source file carries the project's copyright and licence header.

ament_copyright is not installable from PyPI, so this test checks the same rule.
"""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEADER = ('# Copyright 2026 The bisenet_ros Authors\n#\n'
          '# Licensed under the Apache License, Version 2.0 (the "License");')


@pytest.mark.copyright
@pytest.mark.linter
def test_every_python_file_has_the_copyright_header():
    sources = [p for folder in ('bisenet_ros', 'test', 'launch')
               for p in (ROOT / folder).rglob('*.py')] + [ROOT / 'setup.py']
    missing = [str(p.relative_to(ROOT)) for p in sources
               if not p.read_text(encoding='utf-8').startswith(HEADER)]
    assert not missing, f'files without the copyright header: {missing}'
