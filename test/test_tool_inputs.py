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

"""What a user gives the tools that cannot work: one line and an exit status, nothing started."""

from bisenet_ros.tools import demo, train
import pytest


@pytest.mark.parametrize('text, reason', [
    ('lr: [\n', 'not a readable YAML file (while parsing'),
    ('- lr\n- 0.1\n', 'expected a mapping of settings, got a list'),
    ('lr: 0.1\n\tbad: tab\n', 'not a readable YAML file'),
    (b'\xff\xfe lr: 1', 'not a readable YAML file')])
def test_a_training_config_that_is_not_a_mapping_of_settings_is_one_line(
        tmp_path, capsys, text, reason):
    config = tmp_path / 'run.yaml'
    config.write_bytes(text if isinstance(text, bytes) else text.encode())
    assert train.main(['--config', str(config), '--data', str(tmp_path)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and f'--config {config}: {reason}' in lines[0], lines


@pytest.mark.parametrize('case, reason', [
    ('missing', 'no such file or folder'), ('empty_folder', 'no frames in'),
    ('not_media', 'not an image, folder, video')])
def test_a_demo_input_that_cannot_work_is_refused_before_anything_starts(
        tmp_path, capsys, case, reason):
    source = tmp_path / {'missing': 'drive.mp4', 'empty_folder': 'frames',
                         'not_media': 'notes.txt'}[case]
    if case == 'empty_folder':
        source.mkdir()
    elif case == 'not_media':
        source.write_text('a note')
    assert demo.main(['--input', str(source), '--output', str(tmp_path / 'out')]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1].startswith('bisenet demo: ') and reason in lines[-1], lines
    assert not (tmp_path / 'out').exists(), 'nothing is written for an input refused'
