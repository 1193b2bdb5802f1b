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

"""bisenet evaluate scores what runs: the shipped int8 file, and whatever auto picks."""

import json
from pathlib import Path

from bisenet_ros.resources import demo_model_path
from bisenet_ros.runtime import build_segmenter
from bisenet_ros.tools.evaluate import main
import pytest

CAMVID = Path(__file__).resolve().parents[2] / 'shared' / 'datasets' / 'camvid'
needs_camvid = pytest.mark.skipif(not (CAMVID / 'val.txt').exists(),
                                  reason=f'CamVid not found at {CAMVID}')


@pytest.fixture(scope='module')
def mini_val(tmp_path_factory):
    """Return a data root listing three real CamVid val frames."""
    root = tmp_path_factory.mktemp('camvid')
    lines = [line for line in (CAMVID / 'val.txt').read_text().split('\n') if line.strip()]
    (root / 'val.txt').write_text(''.join(
        ' '.join(str(CAMVID / f) for f in line.split()) + '\n' for line in lines[:3]))
    return root


@needs_camvid
def test_the_shipped_int8_file_is_scored_as_it_runs(mini_val, tmp_path, capsys):
    int8 = demo_model_path().with_name(f'{demo_model_path().stem}_int8.onnx')
    out = tmp_path / 'int8.json'
    assert main(['--model', str(int8), '--data', str(mini_val), '--json', str(out)]) == 0
    printed = capsys.readouterr().out
    summary = json.loads(out.read_text())
    assert summary['frames'] == 3 and 'int8' in summary['backend']
    assert printed.startswith(f'bisenet evaluate: {int8.name} on ')
    assert 'mIoU ' in printed and 0.0 < summary['miou'] <= 1.0


@needs_camvid
def test_auto_is_scored_on_the_path_it_chose_and_says_which(mini_val, tmp_path, capsys):
    out = tmp_path / 'auto.json'
    assert main(['--data', str(mini_val), '--json', str(out)]) == 0
    printed = capsys.readouterr().out
    chosen = build_segmenter()
    summary = json.loads(out.read_text())
    assert summary['backend'] == chosen.describe()
    assert f'(auto: {chosen.auto_choice.reason})' in printed.splitlines()[0]
    # Pinned to the same path, the score is the same: evaluate runs what auto runs.
    pinned = tmp_path / 'pinned.json'
    choice = chosen.auto_choice
    model = choice.model or str(demo_model_path())
    assert main(['--model', model, '--data', str(mini_val), '--json', str(pinned),
                 '--backend', choice.backend, '--device', choice.device,
                 '--precision', choice.precision]) == 0
    assert json.loads(pinned.read_text())['miou'] == summary['miou']
