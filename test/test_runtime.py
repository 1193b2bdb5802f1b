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


"""The Segmenter: any image in, labels at its resolution out, every backend error path."""

import logging
import subprocess
import sys

from bisenet_ros.runtime import BackendUnavailableError, build_segmenter, hardware, Segmenter
from bisenet_ros.runtime.config import RuntimeConfig
from bisenet_ros.runtime.export import (export_onnx, read_metadata, set_metadata,
                                        verify_against_torch)
from bisenet_ros.runtime.processing import place, reduce_logits
from helpers import needs, needs_no_gpu, simulated_class, street_like
import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F

SIZE = (256, 128)
ODD_SIZES = [(720, 1280), (517, 333), (640, 360), (97, 65)]  # (H, W): wide, portrait, tiny
# The Segmenter's own behaviour, on the path with no choice in it.
TORCH_FP32 = {'backend': 'torch', 'device': 'cpu', 'precision': 'fp32'}


@pytest.fixture(scope='module')
def torch_seg(checkpoint):
    """Return a torch Segmenter at a small input size."""
    return build_segmenter(checkpoint, **TORCH_FP32, input_size=SIZE)


@pytest.mark.parametrize('resize', ['stretch', 'letterbox', 'native'])
@pytest.mark.parametrize('shape', ODD_SIZES)
def test_labels_come_back_at_the_source_resolution(checkpoint, resize, shape):
    seg = build_segmenter(checkpoint, **TORCH_FP32, input_size=SIZE, resize=resize,
                          confidence=True)
    (result,) = seg.segment([street_like(*shape)])
    assert result.labels.shape == shape and result.labels.dtype == np.uint8
    assert result.labels.max() < 19
    assert result.confidence.shape == shape and result.confidence.dtype == np.float32
    assert (result.confidence >= 1 / 19 - 1e-6).all() and (result.confidence <= 1).all()
    assert {'pre_ms', 'network_ms', 'post_ms'} <= set(result.timings)


def test_mixed_sizes_in_one_call_equal_one_by_one(torch_seg):
    images = [street_like(*shape, seed=i) for i, shape in enumerate(ODD_SIZES)]
    together = torch_seg.segment(images, confidence=True)
    for image, result in zip(images, together):
        (alone,) = torch_seg.segment([image], confidence=True)
        # The batch size changes the CPU kernels' float rounding (AVX-512 oneDNN:
        # logits 3e-4 apart), which may flip a near-tie pixel; a mix-up of images
        # or placements would differ almost everywhere.
        assert result.labels.shape == alone.labels.shape
        assert (result.labels == alone.labels).mean() > 0.999
        np.testing.assert_allclose(result.confidence, alone.confidence, atol=1e-3)


def test_letterbox_keeps_the_aspect_ratio_of_portrait_frames():
    where = place(333, 517, 'letterbox', (1024, 512))
    _, _, width, height = where.content
    assert height == 512 and abs(width / height - 333 / 517) < 0.01
    assert place(1280, 720, 'native', None).network == (1280, 736)


def test_nearest_label_resize_only_produces_ids_the_network_produced(checkpoint):
    seg = build_segmenter(checkpoint, **TORCH_FP32, input_size=SIZE)
    image = street_like(517, 333)
    batch, _ = seg.preprocess([image])
    with torch.inference_mode():
        network_ids = set(np.unique(seg.backend.run(batch)['logits'].argmax(1).numpy()))
    (result,) = seg.segment([image])
    assert set(np.unique(result.labels)) <= network_ids


def test_logits_label_resize_equals_upsampling_logits_then_argmax(checkpoint):
    seg = build_segmenter(checkpoint, **TORCH_FP32, input_size=SIZE, label_resize='logits')
    image = street_like(300, 500)
    batch, _ = seg.preprocess([image])
    with torch.inference_mode():
        logits = seg.backend.run(batch)['logits']
        expected = F.interpolate(logits, size=(300, 500), mode='bilinear',
                                 align_corners=False).argmax(1)[0].numpy()
    assert np.array_equal(seg.segment([image])[0].labels, expected)


@pytest.mark.parametrize('layout', [torch.contiguous_format, torch.channels_last])
def test_reduced_labels_equal_argmax_and_ties_go_to_the_first_class(layout):
    logits = torch.randn(2, 19, 16, 24).contiguous(memory_format=layout)
    logits[1, 3, 5, 7] = logits[1, 11, 5, 7] = 50.0
    labels, _ = reduce_logits(logits, confidence=False)
    assert labels.dtype == torch.uint8
    assert torch.equal(labels.long(), logits.argmax(dim=1))
    assert labels[1, 5, 7] == 3


def test_normalisation_uses_the_checkpoints_mean_and_std(torch_seg):
    grey = np.full((SIZE[1], SIZE[0], 3), 128, dtype=np.uint8)
    batch, _ = torch_seg.preprocess([grey])
    mean, std = np.array(torch_seg.info.mean), np.array(torch_seg.info.std)
    assert np.allclose(batch[0, :, 0, 0], (128 / 255 - mean) / std, atol=1e-5)


@pytest.mark.parametrize('outputs', ['logits', 'labels'])
def test_onnx_export_agrees_with_torch(checkpoint, tmp_path, outputs):
    seg = build_segmenter(checkpoint, **TORCH_FP32, input_size=SIZE)
    model = seg.backend.model
    path = export_onnx(model, seg.info.to_metadata(), tmp_path / 'm.onnx', SIZE, outputs)
    inputs = np.random.default_rng(1).standard_normal((2, 3, SIZE[1], SIZE[0]),
                                                      dtype=np.float32)
    figures = verify_against_torch(path, model, inputs, min_agreement=0.995)
    assert figures['argmax_agreement'] >= 0.995
    meta = read_metadata(path)
    assert meta['input_size'] == list(SIZE) and len(meta['class_names']) == 19
    assert not list(tmp_path.glob('*.data')), 'export must be one self-contained file'


def test_onnxruntime_backend_matches_torch_on_odd_sizes(checkpoint, cache, torch_seg):
    seg = build_segmenter(checkpoint, backend='onnxruntime', input_size=SIZE, cache_dir=cache)
    images = [street_like(*shape, seed=i) for i, shape in enumerate(ODD_SIZES)]
    for ours, ref in zip(seg.segment(images), torch_seg.segment(images)):
        assert ours.labels.shape == ref.labels.shape
        assert (ours.labels == ref.labels).mean() > 0.995


def test_exported_onnx_file_loads_alone(checkpoint, cache):
    build_segmenter(checkpoint, backend='onnxruntime', input_size=SIZE, cache_dir=cache)
    (onnx_path,) = [p for p in (cache / 'onnx').glob('*-fp32.onnx') if 'labels-fp32' in p.name]
    seg = build_segmenter(onnx_path, backend='onnxruntime')
    assert seg.input_size == SIZE and seg.info.class_names[0] == 'road'
    assert seg.segment([street_like(50, 70)])[0].labels.shape == (50, 70)


@pytest.mark.parametrize('precision', ['fp32', 'bf16'])
def test_openvino_backend_agrees_with_torch(checkpoint, cache, torch_seg, precision):
    needs('openvino', precision)
    seg = build_segmenter(checkpoint, backend='openvino', precision=precision, input_size=SIZE,
                          cache_dir=cache)
    images = [street_like(*shape, seed=i) for i, shape in enumerate(ODD_SIZES)]
    for ours, ref in zip(seg.segment(images), torch_seg.segment(images)):
        assert (ours.labels == ref.labels).mean() > (0.995 if precision == 'fp32' else 0.9)
    with pytest.raises(BackendUnavailableError, match='runs on the CPU'):
        build_segmenter(checkpoint, backend='openvino', device='cuda', precision='fp32',
                        input_size=SIZE, cache_dir=cache)


@pytest.mark.parametrize('outputs', ['labels', 'labels+confidence', 'logits'])
def test_openvino_split_at_the_upsampling_computes_the_same_graph(checkpoint, tmp_path, outputs):
    needs('openvino')
    import openvino
    from bisenet_ros.runtime.backends.openvino_backend import _split_at_upsampling
    from bisenet_ros.checkpoint import load_checkpoint
    model, info = load_checkpoint(checkpoint)
    path = export_onnx(model, info.to_metadata(), tmp_path / 'm.onnx', SIZE, outputs)
    core = openvino.Core()
    config = {'INFERENCE_PRECISION_HINT': 'f32'}
    whole = core.compile_model(str(path), 'CPU', config)
    body, tail = _split_at_upsampling(core.read_model(str(path)))
    body, tail = (core.compile_model(m, 'CPU', config) for m in (body, tail))
    assert body.outputs[0].get_partial_shape()[2:].to_shape() == (SIZE[1] // 8, SIZE[0] // 8)
    assert [o.get_any_name() for o in tail.outputs] == [o.get_any_name() for o in whole.outputs]
    image = np.random.default_rng(0).standard_normal((2, 3, SIZE[1], SIZE[0]), np.float32)
    expected = whole.create_infer_request().infer({0: image})
    produced = tail.create_infer_request().infer({0: body.create_infer_request().infer(
        {0: image})[0]})
    for index in range(len(whole.outputs)):
        np.testing.assert_allclose(produced[index], expected[index], rtol=1e-5, atol=1e-5)


def test_openvino_backend_sends_no_telemetry(checkpoint, cache):
    needs('openvino')
    # A fresh interpreter: the first import of openvino decides.
    code = ('import sys, threading, time\n'
            'from bisenet_ros.runtime import build_segmenter\n'
            f'build_segmenter({str(checkpoint)!r}, backend="openvino", input_size={SIZE!r}, '
            f'cache_dir={str(cache)!r})\n'
            'time.sleep(0.5)\n'
            'print(sys.modules["openvino_telemetry"], [t.name for t in threading.enumerate()])')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         timeout=300, check=True).stdout
    assert out.strip() == "None ['MainThread']"


def test_torch_reduced_precision_hands_float32_logits_to_the_upsampling(checkpoint):
    needs('torch', 'bf16')
    seg = build_segmenter(checkpoint, backend='torch', device='cpu', precision='bf16',
                          input_size=SIZE)
    model = seg.backend.model
    batch, _ = seg.preprocess([street_like(128, 256)])
    logits = seg.backend.run(batch)['logits']
    assert logits.dtype == torch.float32 and logits.shape[2:] == (SIZE[1], SIZE[0])
    assert not model.classifier._forward_hooks  # the lent model is left as it was


def test_cuda_request_on_a_cpu_machine_falls_back_with_a_log(checkpoint, cache, caplog):
    needs_no_gpu()
    with caplog.at_level(logging.WARNING, logger='bisenet_ros.runtime'):
        seg = build_segmenter(checkpoint, backend='onnxruntime', device='cuda',
                              precision='fp32', input_size=SIZE, cache_dir=cache)
    assert seg.backend.providers[0] == 'CPUExecutionProvider'
    assert 'could not be used' in caplog.text


@pytest.mark.parametrize('kwargs,message', [
    ({'backend': 'tensorflow'}, 'auto, torch, onnxruntime, openvino'),
    ({'device': 'tpu'}, 'auto, cpu, cuda'),
    ({'precision': 'fp8'}, 'auto, fp32, fp16, bf16, int8'),
    ({'resize': 'crop'}, 'stretch, letterbox, native'),
    ({'input_size': (1000, 512)}, 'multiple of 32'),
    ({'batch': 0}, 'batch must be an integer within 1..64'),
])
def test_unknown_choices_raise_value_error_naming_valid_ones(checkpoint, kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_segmenter(checkpoint, **kwargs)


@pytest.mark.parametrize('kwargs,message', [
    ({'device': 'cuda'}, 'no CUDA GPU'),
    ({'precision': 'fp16'}, 'fp16 on a CPU would be emulated'),
    ({'backend': 'torch', 'precision': 'int8'}, 'use backend onnxruntime'),
    ({'backend': 'onnxruntime', 'precision': 'bf16'}, 'not bf16; for bf16 use backend openvino'),
    ({'backend': 'onnxruntime', 'precision': 'fp16'}, 'fp16 on a CPU would be emulated'),
    ({'backend': 'onnxruntime', 'precision': 'fp16', 'device': 'cuda',
      'providers': ('cuda', 'cpu')}, 'TensorRT'),
])
def test_unavailable_combinations_say_why(checkpoint, cache, kwargs, message):
    if kwargs.get('device') == 'cuda':
        needs_no_gpu()
    with pytest.raises(BackendUnavailableError, match=message):
        build_segmenter(checkpoint, input_size=SIZE, cache_dir=cache, **kwargs)


@pytest.mark.parametrize('backend', ['torch', 'openvino'])
def test_a_precision_the_cpu_only_emulates_is_refused_before_any_work(
        checkpoint, tmp_path, monkeypatch, backend):
    needs(backend)
    monkeypatch.setenv(hardware.ENV_OVERRIDE, 'avx2')  # the AVX2-only class: no native bf16
    refused = rf'class {simulated_class()}\) has no native bf16 .* emulated.*use fp32'
    with pytest.raises(BackendUnavailableError, match=refused):
        build_segmenter(checkpoint, backend=backend, precision='bf16', input_size=SIZE,
                        cache_dir=tmp_path)
    monkeypatch.setenv(hardware.ENV_OVERRIDE, '')  # fp16 is emulated on every CPU
    with pytest.raises(BackendUnavailableError, match='fp16 on a CPU would be emulated'):
        build_segmenter(checkpoint, backend=backend, precision='fp16', input_size=SIZE,
                        cache_dir=tmp_path)
    assert not any(tmp_path.iterdir())  # refused before exporting anything
    monkeypatch.setenv(hardware.ENV_OVERRIDE, 'avx2')
    seg = build_segmenter(checkpoint, backend=backend, precision='fp32', input_size=SIZE,
                          cache_dir=tmp_path)
    assert seg.segment(street_like(50, 70))[0].labels.shape == (50, 70)


def test_other_invalid_uses_are_rejected(checkpoint, cache, torch_seg):
    with pytest.raises(ValueError, match='calibration_images'):
        build_segmenter(checkpoint, backend='onnxruntime', precision='int8', input_size=SIZE,
                        cache_dir=cache)
    with pytest.raises(ValueError, match='native needs backend torch'):
        build_segmenter(checkpoint, backend='onnxruntime', resize='native', input_size=SIZE,
                        cache_dir=cache)
    for bad in (np.zeros((4, 4, 3), np.float32), np.zeros((4, 4), np.uint8),
                np.zeros((4, 4, 4), np.uint8), np.zeros((0, 4, 3), np.uint8), 'image'):
        with pytest.raises(ValueError, match='image 0'):
            torch_seg.segment([bad])


def test_an_in_memory_model_segments_as_its_file_does(checkpoint, torch_seg):
    from bisenet_ros.checkpoint import CheckpointInfo, load_checkpoint
    model, info = load_checkpoint(checkpoint)
    meta = info.to_metadata()
    rebuilt = CheckpointInfo.from_metadata(meta, info.path, info.source)
    assert rebuilt.to_metadata() == meta and (rebuilt.path, rebuilt.source) == (info.path,
                                                                                info.source)
    seg = Segmenter.from_model(model, info, RuntimeConfig(input_size=SIZE))
    assert seg.model_path == checkpoint and seg.class_names == torch_seg.class_names
    images = [street_like(*shape, seed=i) for i, shape in enumerate(ODD_SIZES)]
    for ours, ref in zip(seg.segment(images), torch_seg.segment(images)):
        assert np.array_equal(ours.labels, ref.labels)


@pytest.mark.parametrize('change, field', [
    ({'int8_agreement': 1.5}, 'int8_agreement'),
    ({'int8_agreement': 'high'}, 'int8_agreement'),
    ({'int8_check_frames': 0}, 'int8_check_frames'),
    ({'precision': 'fp8'}, 'precision'),
    ({'input_size': [65536, 65536]}, 'input_size'),
    ({'input_size': None}, 'input_size'),
    ({'class_names': 'road'}, 'class_names'),
    ({'std': [0.2, 0.0, 0.2]}, 'std'),
])
def test_an_onnx_files_self_declared_metadata_is_checked(checkpoint, cache, tmp_path, change,
                                                         field):
    seg = build_segmenter(checkpoint, backend='onnxruntime', input_size=SIZE, cache_dir=cache)
    proto = onnx.load(str(seg.info.path))
    set_metadata(proto, dict(read_metadata(seg.info.path), **change))
    path = tmp_path / 'declared.onnx'
    onnx.save(proto, str(path))
    for backend in ('onnxruntime', 'openvino'):
        if backend not in hardware.probe().backends:
            continue  # each backend reads the file's metadata itself; check those installed
        with pytest.raises(ValueError, match=f'metadata {field} = .* expected'):
            build_segmenter(path, backend=backend)
