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


"""make demo's job runs end to end: camera player, node and recorder processes."""

from pathlib import Path
import subprocess
import sys

from bisenet_ros.checkpoint import save_checkpoint
from bisenet_ros.media import bags
from bisenet_ros.models import build_model
import torch

REPO = Path(__file__).resolve().parents[1]


def test_demo_segments_a_short_input_and_writes_bag_and_panels(tmp_path):
    torch.manual_seed(0)
    model = tmp_path / 'small.safetensors'
    save_checkpoint(model, build_model('bisenetv2', aux=False).eval(),
                    {'arch': 'bisenetv2', 'input_size': [128, 64]})
    run = subprocess.run(
        [sys.executable, '-m', 'bisenet_ros.tools.demo', '--model', str(model), '--frames', '3',
         '--fps', '2', '--output', str(tmp_path / 'out')],
        cwd=REPO, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    (run_dir,) = (tmp_path / 'out').iterdir()
    counts = {t.name: t.count for t in bags.read_topics(run_dir / 'output_bag').values()}
    assert counts['/camera/image_raw'] == 3
    assert 1 <= counts['/camera/labels'] <= 3
    assert counts['/camera/labels'] == counts['/camera/overlay'] == counts['/camera/color']
    assert len(list((run_dir / 'frames').glob('frame_*.png'))) == counts['/camera/labels']
    assert 'frames in 3' in run.stdout
