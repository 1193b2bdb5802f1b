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

"""Values no subcommand can use: refused in one line before any work, never a traceback."""

from pathlib import Path

from bisenet_ros.cli import main
import pytest

REPO = Path(__file__).resolve().parents[1]

# argv -> what the one line says; all are usage errors (status 2) read by argparse.
USAGE_ERRORS = {
    ('bench', '--input-size', '33x33'): 'input width 33 must be a positive multiple of 32',
    ('bench', '--input-size', '0x0'): 'input width 0 must be a positive multiple of 32',
    ('bench', '--batch', '0'): '--batch: 0 is not within 1..64',
    ('bench', '--repeats', '0'): '--repeats: 0 is below 1',
    ('bench', '--warmup', '-1'): '--warmup: -1 is below 0',
    ('bench', '--configs', 'nosuch'): "'nosuch' is not backend:precision[:contiguous]",
    ('bench', '--configs', 'torch:fp32:channels'): "'torch:fp32:channels' is not backend",
    ('bench', '--configs', 'torch:fp32@'): "'torch:fp32@' is not backend",
    ('bench-node', '--input-size', '0x0'): 'input width 0 must be a positive multiple of 32',
    ('bench-node', '--rate', '-1'): '--rate: -1.0 is not a number above 0',
    ('bench-node', '--rate', 'inf'): '--rate: inf is not a number above 0',
    ('dds-check', '--count', '0'): '--count: 0 is below 1',
    ('dds-check', '--width', '99999999'): '--width: 99999999 is not within 1..16384',
    ('record', 'bad topic'): "'bad topic': topic name must not contain characters",
    ('record', '/a//b'): "'/a//b': topic name must not contain repeated '/'",
    ('record', '/x', '--duration', '-1'): '--duration: -1.0 is not a number above 0',
    ('record', '/x', '--count', '0'): '--count: 0 is below 1',
    ('segment', 'a.png', '-o', 'out', '--alpha', '5'): '--alpha: 5.0 is not within 0..1',
    ('segment', 'a.png', '-o', 'out', '--max-image-pixels', '-1'):
        '--max-image-pixels: -1 is not within 1..',
    ('fleet', 'bags', '-o', 'out', '--alpha', 'nan'): '--alpha: nan is not within 0..1',
    ('evaluate', '--data', 'd', '--limit', '-1'): '--limit: -1 is below 1',
    ('export', '-o', 'x.onnx', '--int8-min-agreement', '1.5'):
        '--int8-min-agreement: 1.5 is not within 0..1',
    ('demo', '--fps', '0'): '--fps: 0.0 is not a number above 0',
    ('play', 'bag', '--wait-timeout', '-3'): '--wait-timeout: -3.0 is not a number above 0',
    ('play', 'bag', '--qos-depth', '0'): '--qos-depth: 0 is below 1',
    ('info', '--class-table', 'ade20k'): '--class-table applies to a --model',
    # Fast DDS runs on its defaults past a file it cannot read: the row would be a lie.
    ('dds-check', '--profile', 'README.md'): 'README.md: not a readable XML file',
    ('dds-check', '--profile', 'package.xml'): 'package.xml: not a Fast DDS profile (its root is',
    ('dds-check', '--profile', 'no/such.xml'): 'no/such.xml: not a readable XML file',
}


@pytest.mark.parametrize('argv', sorted(USAGE_ERRORS))
def test_a_value_no_subcommand_can_use_is_a_usage_error(capsys, monkeypatch, argv):
    monkeypatch.chdir(REPO)  # the files named are the repository's own
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    assert 'Traceback' not in err and USAGE_ERRORS[argv] in err.splitlines()[-1], err


def test_a_tools_own_exit_message_is_printed(tmp_path, capsys):
    # export says 'no images in ...' through SystemExit: the front door prints it.
    assert main(['export', '--precision', 'int8', '--calibration', str(tmp_path),
                 '-o', str(tmp_path / 'x.onnx')]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == f'bisenet export: no images in {tmp_path}'


def test_a_path_that_cannot_be_written_is_one_line_naming_it(tmp_path, capsys):
    assert main(['info', '--json', str(tmp_path)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith('bisenet info: ') and str(tmp_path) in lines[0]
    assert 'BISENET_ROS_TRACEBACK=1' in lines[0]
