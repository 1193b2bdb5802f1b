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


"""bisenet export: verified fp32 files, int8 files that carry their measured agreement."""

import json

from bisenet_ros.runtime import build_segmenter
from bisenet_ros.runtime.export import read_metadata
from bisenet_ros.tools.export import main
import cv2
import numpy as np
import pytest

SIZE = '256x128'


@pytest.fixture(scope='module')
def frames(tmp_path_factory):
    """Return a folder of 8 smooth street-like PNG frames."""
    folder = tmp_path_factory.mktemp('frames')
    rng = np.random.default_rng(0)
    for index in range(8):
        small = rng.integers(0, 255, (4, 6, 3), dtype=np.uint8)
        cv2.imwrite(str(folder / f'{index}.png'),
                    cv2.resize(small, (300, 160), interpolation=cv2.INTER_CUBIC))
    return folder


def _export(capsys, *argv):
    code = main([str(a) for a in argv])
    return code, capsys.readouterr()


def test_fp32_export_is_verified_and_loads_alone(checkpoint, tmp_path, capsys):
    out = tmp_path / 'v2.onnx'
    code, printed = _export(capsys, '--model', checkpoint, '-o', out, '--input-size', SIZE)
    assert code == 0
    report = json.loads(printed.out)
    assert report['verification']['argmax_agreement'] >= 0.999
    seg = build_segmenter(out, backend='onnxruntime', precision=None)
    assert seg.input_size == (256, 128)
    assert seg.segment(np.zeros((90, 70, 3), np.uint8))[0].labels.shape == (90, 70)


def test_int8_export_reports_and_stores_its_held_out_agreement(checkpoint, frames, tmp_path,
                                                               capsys):
    out = tmp_path / 'v2_int8.onnx'
    code, printed = _export(capsys, '--model', checkpoint, '-o', out, '--input-size', SIZE,
                            '--precision', 'int8', '--calibration', frames,
                            '--int8-for', 'openvino', '--int8-min-agreement', 0)
    assert code == 0
    figures = json.loads(printed.out)['verification']['int8']
    meta = read_metadata(out)
    assert figures == {'argmax_agreement_vs_fp32': meta['int8_agreement'],
                       'held_out_frames': 2}
    assert (meta['int8_activations'], meta['calibration_frames']) == ('s8', 6)
    assert 0.5 < meta['int8_agreement'] < 1.0  # random weights: many near-ties


def test_int8_export_below_the_minimum_fails_and_leaves_no_file(checkpoint, frames,
                                                                tmp_path, capsys):
    out = tmp_path / 'v2_int8.onnx'
    code, printed = _export(capsys, '--model', checkpoint, '-o', out, '--input-size', SIZE,
                            '--precision', 'int8', '--calibration', frames)
    assert code == 3 and not out.exists()
    assert 'held-out calibration frames, below --int8-min-agreement 99.50%' in printed.err


def test_int8_export_without_frames_is_refused(checkpoint, tmp_path, capsys):
    code, printed = _export(capsys, '--model', checkpoint, '-o', tmp_path / 'x.onnx',
                            '--precision', 'int8')
    assert code == 2 and '--calibration' in printed.err
