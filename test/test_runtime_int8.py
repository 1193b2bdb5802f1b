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


"""int8 through the Segmenter: held-out agreement, the evidence gate, the calibration cache."""

import logging

from bisenet_ros.runtime import build_segmenter
from bisenet_ros.runtime.export import read_metadata, set_metadata
from helpers import needs, street_like
import onnx
import pytest

SIZE = (256, 128)


def test_int8_holds_out_frames_and_stores_the_agreement_it_measured(checkpoint, cache):
    frames = [street_like(128, 256, seed=s) for s in range(4)]
    int8 = build_segmenter(checkpoint, backend='onnxruntime', precision='int8', input_size=SIZE,
                           cache_dir=cache, calibration_images=frames, int8_min_agreement=0)
    meta = int8.backend.metadata
    assert (meta['precision'], meta['int8_activations']) == ('int8', 'u8')
    assert (meta['calibration_frames'], meta['int8_check_frames']) == (3, 1)
    # The figure is what the two models do on the held-out (fourth) frame.
    fp32 = build_segmenter(checkpoint, backend='onnxruntime', input_size=SIZE, cache_dir=cache)
    same = (int8.segment(frames[3])[0].labels == fp32.segment(frames[3])[0].labels).mean()
    assert meta['int8_agreement'] == pytest.approx(same, abs=1e-9)


def test_int8_cache_is_keyed_by_the_calibration_frames(checkpoint, tmp_path):
    for seed in (0, 1, 0):
        frames = [street_like(128, 256, seed=seed + s) for s in range(2)]
        build_segmenter(checkpoint, backend='onnxruntime', precision='int8', input_size=SIZE,
                        cache_dir=tmp_path, calibration_images=frames, int8_min_agreement=0)
    assert len(list((tmp_path / 'onnx').glob('*-int8-u8-*.onnx'))) == 2


def _int8_copy(checkpoint, cache, tmp_path, agreement):
    """Return an int8 .onnx whose stored agreement is ``agreement`` (None: no figure)."""
    frames = [street_like(128, 256, seed=s) for s in range(2)]
    seg = build_segmenter(checkpoint, backend='onnxruntime', precision='int8', input_size=SIZE,
                          cache_dir=cache, calibration_images=frames, int8_min_agreement=0)
    proto = onnx.load(str(seg.info.path))
    meta = read_metadata(seg.info.path)
    meta.pop('int8_agreement')
    if agreement is not None:
        meta['int8_agreement'] = agreement
    set_metadata(proto, meta)
    path = tmp_path / 'int8.onnx'
    onnx.save(proto, str(path))
    return path


def test_int8_below_the_minimum_agreement_is_refused_with_the_figure(
        checkpoint, cache, tmp_path, caplog):
    path = _int8_copy(checkpoint, cache, tmp_path, 0.9)
    with pytest.raises(ValueError, match=r'90\.00% of pixels .* below int8_min_agreement '
                                         r'99\.50%; use bf16'):
        build_segmenter(path, backend='onnxruntime', precision='int8')
    with caplog.at_level(logging.INFO, logger='bisenet_ros.runtime'):
        seg = build_segmenter(path, backend='onnxruntime', precision='int8',
                              int8_min_agreement=0.85)
    assert 'int8 labels 90.00% of pixels as fp32 did on 1 held-out' in caplog.text
    assert seg.segment(street_like(50, 70))[0].labels.shape == (50, 70)


def test_int8_without_a_measured_agreement_runs_only_unchecked(checkpoint, cache, tmp_path):
    path = _int8_copy(checkpoint, cache, tmp_path, None)
    with pytest.raises(ValueError, match='no measured int8 agreement'):
        build_segmenter(path, backend='onnxruntime', precision='int8')
    build_segmenter(path, backend='onnxruntime', precision='int8', int8_min_agreement=0)


def test_openvino_int8_quantises_symmetric_activations_and_warns_of_others(
        checkpoint, cache, caplog):
    needs('openvino', 'int8')
    frames = [street_like(128, 256, seed=s) for s in range(2)]
    with caplog.at_level(logging.WARNING, logger='bisenet_ros.runtime'):
        ov = build_segmenter(checkpoint, backend='openvino', precision='int8', input_size=SIZE,
                             cache_dir=cache, calibration_images=frames, int8_min_agreement=0)
        assert ov.backend.metadata['int8_activations'] == 's8'
        assert 'quantise for openvino' not in caplog.text
        assert ov.segment(street_like(50, 70))[0].labels.shape == (50, 70)
        ort = build_segmenter(checkpoint, backend='onnxruntime', precision='int8', input_size=SIZE,
                              cache_dir=cache, calibration_images=frames, int8_min_agreement=0)
        build_segmenter(ort.info.path, backend='openvino', int8_min_agreement=0)
    assert 'quantise for openvino' in caplog.text
