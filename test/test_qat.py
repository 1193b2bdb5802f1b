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
Quantisation-aware fine-tuning: a real NNCF run on CamVid frames, its int8 exports and the gate.

The QAT run is tiny (4 train frames, 2 iterations, 128x96) but real end to
end: the exported file must run int8 convolutions in ONNX Runtime and in
OpenVINO (a silent fall-back to fp32 fails), carry 7-bit weights, and carry
evidence measured in both runtimes on held-out frames.
"""

import collections
import logging
import os
import re

from bisenet_ros.checkpoint import save_checkpoint
from bisenet_ros.models import build_model
from bisenet_ros.resources import demo_model_path
from bisenet_ros.runtime import auto, BackendUnavailableError, hardware, quantize
from bisenet_ros.runtime.export import read_metadata
from bisenet_ros.training.datasets import CAMVID_CLASS_NAMES
import helpers
import numpy as np
import onnx
from onnx import numpy_helper
import pytest

SIZE = (128, 96)
# ONNX Runtime's int8 convolutions, in its optimised graph.
INT8_CONVS = ('QLinearConv', 'ConvInteger', 'NhwcQLinearConv')
FLOAT_CONVS = ('Conv', 'FusedConv', 'NhwcFusedConv')


def _needs_nncf():
    """Skip without NNCF (saying how to get it); with CI=true fail instead."""
    try:
        import nncf  # noqa: F401
    except ImportError as exc:
        reason = f"nncf is not importable ({exc}): pip install 'bisenet_ros[qat]'"
        if os.environ.get('CI', '').lower() == 'true':
            pytest.fail(reason)
        pytest.skip(reason)


def _mini_camvid(root, camvid):
    """Write split lists of 4 train and 3 val CamVid frames (absolute paths) under ``root``."""
    for split, count in (('train', 4), ('val', 3)):
        lines = (camvid / f'{split}.txt').read_text().splitlines()[:count]
        root.joinpath(f'{split}.txt').write_text(
            ''.join(' '.join(str(camvid / part) for part in line.split()) + '\n'
                    for line in lines))
    return root


@pytest.fixture(scope='module')
def qat_file(tmp_path_factory):
    """Run bisenet train --qat (7-bit weights) on a few CamVid frames; return the int8 file."""
    camvid = helpers.shared_path('datasets', 'camvid')
    _needs_nncf()
    helpers.needs('onnxruntime', 'int8')
    helpers.needs('openvino', 'int8')
    from bisenet_ros.tools.train import main
    tmp = tmp_path_factory.mktemp('qat')
    (tmp / 'data').mkdir()
    root = _mini_camvid(tmp / 'data', camvid)
    assert main(['--model', str(demo_model_path()), '--qat', '--qat-weight-bits', '7',
                 '--data', str(root), '--input-size', '128x96', '--crop-size', '128x96',
                 '--batch', '2', '--max-iter', '2', '--warmup-iter', '1', '--lr', '0.001',
                 '--eval-classes', 'camvid', '--threads', '2', '--runs-dir', str(tmp),
                 '--name', 'qat']) == 0
    return tmp / 'qat' / 'qat.onnx'


def _camvid_frames(split, count, info):
    """Return ``count`` normalised (1, 3, H, W) CamVid frames of ``split`` at SIZE."""
    from bisenet_ros.runtime.processing import Normaliser, prepare_batch
    from bisenet_ros.training.datasets import build_dataset
    data = build_dataset('camvid', helpers.shared_path('datasets', 'camvid'), split)
    normaliser = Normaliser(info.mean, info.std)
    return [prepare_batch([data.load(i)[0]], normaliser, 'stretch', SIZE)[0]
            for i in range(count)]


@pytest.mark.parametrize('bits', [7, 8])
def test_qat_starts_from_a_network_that_agrees_with_its_parent(bits):
    # Training cannot be judged if it starts broken: before the first step the
    # fake-quantised network must label held-out frames as the float one does
    # (measured at 128x96: ~91-93 %; a 7-bit grid on half the range gave ~50 %).
    _needs_nncf()
    import torch
    from bisenet_ros.checkpoint import load_checkpoint
    from bisenet_ros.training.qat import quantize_for_training
    model, info = load_checkpoint(demo_model_path())
    calibration = _camvid_frames('train', 4, info)
    held_out = [torch.from_numpy(f) for f in _camvid_frames('val', 3, info)]
    with torch.no_grad():
        reference = [model.eval()(x).argmax(1) for x in held_out]
        quantised = quantize_for_training(model, calibration, bits).eval()
        agreement = np.mean([(quantised(x).argmax(1) == r).float().mean().item()
                             for x, r in zip(held_out, reference)])
    assert agreement >= 0.85, f'{bits}-bit weights: {agreement:.1%} agreement before training'


def test_float_ends_leave_the_image_and_class_convolutions_unquantised():
    # --qat-float-ends: the blocks reading RGB and the classifier keep float weights.
    _needs_nncf()
    from bisenet_ros.checkpoint import load_checkpoint
    from bisenet_ros.training.qat import (_weight_quantizers, float_end_layers,
                                          quantize_for_training)
    model, info = load_checkpoint(demo_model_path())
    ends = float_end_layers(model, info.num_classes)
    assert ends == ['detail.S1.0', 'segment.S1S2.conv', 'head.conv_out']
    frames = _camvid_frames('train', 2, info)
    all_int8 = len(list(_weight_quantizers(quantize_for_training(
        load_checkpoint(demo_model_path())[0], frames, 7))))
    kept = [name for name, _ in _weight_quantizers(quantize_for_training(
        model, frames, 7, ends))]
    assert len(kept) == all_int8 - len(ends)
    assert not [name for name in kept for end in ends if end.replace('.', '/') in name]


def test_qat_file_runs_int8_convolutions_in_onnxruntime(qat_file, tmp_path):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / 'optimised.onnx')
    ort.InferenceSession(str(qat_file), options, providers=['CPUExecutionProvider'])
    ops = collections.Counter(n.op_type for n in onnx.load(options.optimized_model_filepath)
                              .graph.node)
    int8 = sum(ops[name] for name in INT8_CONVS)
    total = int8 + sum(ops[name] for name in FLOAT_CONVS)
    assert total and int8 / total >= 0.9, f'only {int8} of {total} Convs run int8: {ops}'


def test_qat_file_runs_int8_convolutions_in_openvino(qat_file):
    import openvino as ov
    compiled = ov.Core().compile_model(str(qat_file), 'CPU')
    precisions = collections.Counter(
        op.get_rt_info()['runtimePrecision'].astype(str)
        for op in compiled.get_runtime_model().get_ops()
        if op.get_rt_info()['layerType'].astype(str) == 'Convolution')
    assert precisions and set(precisions) <= {'i8', 'u8'}, precisions


def test_qat_file_stores_seven_bit_weights_as_int8(qat_file):
    # The weights are stored quantised (a quarter of float constants), within 7 bits.
    proto = onnx.load(str(qat_file))
    fixed = ({n.output[0] for n in proto.graph.node if n.op_type == 'Constant'}
             | {t.name for t in proto.graph.initializer})
    assert not [n for n in proto.graph.node
                if n.op_type == 'QuantizeLinear' and n.input[0] in fixed]
    weights = [numpy_helper.to_array(t) for t in proto.graph.initializer
               if t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 4]
    assert len(weights) > 40 and max(int(np.abs(w.astype(np.int32)).max()) for w in weights) <= 64
    assert read_metadata(qat_file)['int8_weight_bits'] == 7


def test_qat_file_carries_evidence_from_both_runtimes(qat_file):
    meta = read_metadata(qat_file)
    assert meta['precision'] == 'int8' and meta['int8_method'] == 'qat'
    assert meta['int8_cpu_class'] == hardware.probe().cpu.cpu_class
    evidence = meta['int8_evidence']
    assert evidence['split'] == 'val' and evidence['frames'] == 3
    assert set(evidence['runtimes']) == {'onnxruntime', 'openvino'}
    for figures in evidence['runtimes'].values():
        assert 0 < figures['int8_miou'] <= 1 and 0 < figures['fp32_miou'] <= 1
    assert meta['int8_agreement'] == min(f['agreement'] for f in evidence['runtimes'].values())
    assert (qat_file.parent / 'parent_fp32.onnx').exists()


def _qat_meta(int8_miou, fp32_miou=0.52, cpu_class=None):
    return {'precision': 'int8', 'int8_method': 'qat', 'int8_agreement': 0.9,
            'int8_cpu_class': cpu_class or hardware.probe().cpu.cpu_class,
            'int8_evidence': {'split': 'val', 'frames': 101, 'runtimes': {
                'onnxruntime': {'int8_miou': fp32_miou - 0.002, 'fp32_miou': fp32_miou,
                                'agreement': 0.95},
                'openvino': {'int8_miou': int8_miou, 'fp32_miou': fp32_miou,
                             'agreement': 0.9}}}}


def test_gate_accepts_qat_within_one_point_of_its_parent():
    assert quantize.int8_shortfall(_qat_meta(0.512), 0.995) is None


def test_gate_refuses_qat_more_than_one_point_below_its_parent():
    shortfall = quantize.int8_shortfall(_qat_meta(0.505), 0.995)
    assert 'QAT int8 val mIoU 50.50 vs fp32 parent 52.00 in openvino' in shortfall
    assert quantize.int8_shortfall(_qat_meta(0.505), 0.0) is None  # 0 runs it unchecked


def test_gate_judges_qat_in_the_runtime_that_will_run_it():
    # _qat_meta: onnxruntime 0.2 point below its parent, openvino 1.5 points.
    meta = _qat_meta(0.505)
    assert quantize.int8_shortfall(meta, 0.995, runtime='onnxruntime') is None
    refusal = quantize.int8_shortfall(meta, 0.995, runtime='openvino')
    assert 'QAT int8 val mIoU 50.50 vs fp32 parent 52.00 in openvino on 101' in refusal
    del meta['int8_evidence']['runtimes']['openvino']
    refusal = quantize.int8_shortfall(meta, 0.995, runtime='openvino')
    assert 'measured in onnxruntime, not in openvino' in refusal and '--check' in refusal


def test_segmenter_runs_a_qat_file_where_its_evidence_passes(qat_file, tmp_path):
    # Real sessions on the tiny QAT file with evidence that passes in one runtime only.
    import shutil
    from bisenet_ros.runtime import build_segmenter
    from bisenet_ros.training.evidence import write_evidence
    path = tmp_path / 'split_verdict.onnx'
    shutil.copy(qat_file, path)
    passes, fails = {'int8_miou': 0.515, 'fp32_miou': 0.52, 'agreement': 0.98}, \
        {'int8_miou': 0.48, 'fp32_miou': 0.52, 'agreement': 0.9}
    # The file's scheme names the runtime auto gives it; the other is judged on its own.
    scheme = auto.int8_backend(read_metadata(path)['int8_activations'])
    other = ({'onnxruntime', 'openvino'} - {scheme}).pop()
    write_evidence(path, {'split': 'val', 'frames': 101, 'classes': [0, 1],
                          'runtimes': {scheme: passes, other: fails}})
    chosen = build_segmenter(path, backend='auto', device='auto', precision='auto',
                             threads=1)
    assert (chosen.backend.name, chosen.backend.precision) == (scheme, 'int8')
    with pytest.raises(ValueError, match=f'48.00 vs fp32 parent 52.00 in {other}'):
        build_segmenter(path, backend=other, device='cpu', precision='int8', threads=1)
    write_evidence(path, {'split': 'val', 'frames': 101, 'classes': [0, 1],
                          'runtimes': {scheme: fails, other: passes}})
    with pytest.raises(BackendUnavailableError, match=f'in {scheme}'):
        build_segmenter(path, backend='auto', device='auto', precision='auto',
                        threads=1)
    assert build_segmenter(path, backend=other, device='cpu', precision='int8',
                           threads=1).backend.name == other


def test_gate_refuses_qat_without_evidence():
    meta = _qat_meta(0.52)
    del meta['int8_evidence']
    assert '--check' in quantize.int8_shortfall(meta, 0.995)


def test_gate_warns_once_when_evidence_comes_from_another_cpu_class(caplog):
    other = 'amx' if hardware.probe().cpu.cpu_class != 'amx' else 'avx2'
    quantize._warn_other_class.cache_clear()
    with caplog.at_level(logging.WARNING, 'bisenet_ros.runtime'):
        for _ in range(2):
            assert quantize.int8_shortfall(_qat_meta(0.515, cpu_class=other), 0.995) is None
    warnings = [r.message for r in caplog.records if 'CPU class' in r.message]
    assert len(warnings) == 1 and other in warnings[0] and '--check' in warnings[0]


def test_qat_is_refused_when_the_data_has_other_classes(tmp_path, capsys):
    _needs_nncf()
    from bisenet_ros.tools.train import main
    path = tmp_path / 'camvid11.safetensors'
    save_checkpoint(path, build_model('bisenetv2', 11, aux=False).eval(),
                    {'arch': 'bisenetv2', 'class_names': list(CAMVID_CLASS_NAMES)})
    assert main(['--model', str(path), '--qat', '--num-classes', '11', '--data',
                 str(tmp_path), '--runs-dir', str(tmp_path / 'runs')]) == 2
    err = capsys.readouterr().err
    assert re.match(r'bisenet train: .*its 11 classes .*not the 19 classes the camvid', err)
    assert len(err.splitlines()) == 1


def test_qat_needs_a_model_and_writes_onnx_only(tmp_path, capsys):
    from bisenet_ros.tools.train import main
    base = ['--qat', '--data', str(tmp_path), '--runs-dir', str(tmp_path / 'runs')]
    assert main(base) == 2
    assert 'give it --model CHECKPOINT' in capsys.readouterr().err
    assert main(base + ['--model', str(demo_model_path()), '--output',
                        str(tmp_path / 'int8.safetensors')]) == 2
    assert capsys.readouterr().err.strip().endswith('int8.safetensors must end in .onnx')


@pytest.mark.parametrize('cpu_class, bits', [('avx2', 7), ('avx_vnni', 8), ('avx512', 7),
                                             ('avx512_vnni', 8), ('amx', 8)])
def test_weight_bits_follow_the_int8_dot_product(cpu_class, bits):
    cpu = hardware.Cpu('test', 'x86_64', 2, hardware.CLASSES[cpu_class])
    assert quantize.default_weight_bits(cpu) == bits
    arm = hardware.Cpu('test', 'aarch64', 2, frozenset({'neon'}))
    assert quantize.default_weight_bits(arm) == 7
    assert quantize.default_weight_bits(hardware.Cpu('t', 'aarch64', 2,
                                                     frozenset({'neon', 'dotprod'}))) == 8


def test_export_check_remeasures_the_qat_file_here(qat_file, capsys):
    import json
    from bisenet_ros.tools.export import main
    root = qat_file.parent.parent / 'data'
    assert main(['--check', str(qat_file), '--data', str(root),
                 '--parent', str(qat_file.parent / 'parent_fp32.onnx'), '--write']) == 0
    report = json.loads(capsys.readouterr().out)
    assert report['cpu_class'] == hardware.probe().cpu.cpu_class and report['written']
    assert set(report['here']['runtimes']) == {'onnxruntime', 'openvino'}
    assert read_metadata(qat_file)['int8_evidence'] == report['here']


def test_post_training_int8_records_and_uses_seven_bit_weights(tmp_path):
    camvid = helpers.shared_path('datasets', 'camvid')
    helpers.needs('onnxruntime', 'int8')
    from bisenet_ros.checkpoint import load_checkpoint
    from bisenet_ros.runtime.export import export_verified
    from bisenet_ros.runtime.processing import Normaliser, prepare_batch
    from bisenet_ros.training.datasets import build_dataset
    model, info = load_checkpoint(demo_model_path())
    fp32 = tmp_path / 'fp32.onnx'
    export_verified(model, info, fp32, SIZE, 'labels')
    train = build_dataset('camvid', camvid, 'train')
    normaliser = Normaliser(info.mean, info.std)
    frames = [prepare_batch([train.load(i)[0]], normaliser, 'stretch', SIZE)[0]
              for i in range(4)]
    quantize.quantize_int8(fp32, tmp_path / 'int8.onnx', frames, 'u8', weight_bits=7)
    meta = read_metadata(tmp_path / 'int8.onnx')
    assert (meta['int8_weight_bits'], meta['int8_method']) == (7, 'ptq')
    assert meta['int8_cpu_class'] == hardware.probe().cpu.cpu_class
    weights = [numpy_helper.to_array(t) for t in onnx.load(str(tmp_path / 'int8.onnx'))
               .graph.initializer if t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 4]
    assert len(weights) > 40 and max(int(np.abs(w.astype(np.int32)).max()) for w in weights) <= 64
