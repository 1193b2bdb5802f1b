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

"""The hostile-input regression corpus (test/data/hostile): each file refused as it says."""

from pathlib import Path

from bisenet_ros.checkpoint import CheckpointError, load_checkpoint
from bisenet_ros.image_msgs import compressed_to_rgb, ImageFormatError
from bisenet_ros.media import inputs
import pytest
from sensor_msgs.msg import CompressedImage
import yaml

CORPUS = Path(__file__).resolve().parent / 'data' / 'hostile'
EXPECTED = yaml.safe_load((CORPUS / 'corpus.yaml').read_text())


def test_the_corpus_is_what_its_script_writes(tmp_path):
    import subprocess
    import sys
    subprocess.run([sys.executable, str(CORPUS / 'make_corpus.py'), str(tmp_path)], check=True,
                   timeout=120)
    for name in EXPECTED:
        if not name.endswith('.pth'):  # torch.save archives carry a random record id
            assert (tmp_path / name).read_bytes() == (CORPUS / name).read_bytes(), name


@pytest.mark.parametrize('name', sorted(n for n, e in EXPECTED.items() if 'image' in e))
def test_hostile_images_are_refused_by_the_tools_and_the_node(name):
    expected = EXPECTED[name]['image']
    with pytest.raises(ValueError, match=expected.replace('_', ' ')):
        inputs.read_rgb(CORPUS / name)
    data = (CORPUS / name).read_bytes()
    with pytest.raises(ImageFormatError) as err:
        compressed_to_rgb(CompressedImage(format='jpeg', data=data))
    if expected == 'absurd_size' and not name.startswith('bmp'):
        assert err.value.kind == 'absurd_size'
    else:  # bmp is not a format the node accepts; a text file is no image at all
        assert err.value.kind in ('unsupported_encoding', 'corrupt_compressed')


@pytest.mark.parametrize('name', sorted(n for n, e in EXPECTED.items() if 'checkpoint' in e))
def test_hostile_checkpoints_are_refused_naming_the_cause(name):
    with pytest.raises(CheckpointError, match=EXPECTED[name]['checkpoint']):
        load_checkpoint(CORPUS / name)
