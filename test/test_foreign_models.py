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
Bring your own model: foreign segmentation ONNX files run through the same engine.

Each model is a small torch network exported the way mmdeploy and torch.onnx
users export theirs; the reference is computed by hand with ONNX Runtime and
the preprocessing the contract declares.
"""

import json
import re

from bisenet_ros.runtime import BackendUnavailableError, build_segmenter, foreign
from bisenet_ros.runtime.foreign import contract_of, ContractError
import cv2
import numpy as np
import pytest
import torch
from torch import nn
import yaml

pytest.importorskip('onnxruntime')
SIZE = (64, 32)  # network input W x H
MMSEG_MEAN, MMSEG_STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)


class TinyNet(nn.Module):
    """Scores of ``classes`` classes, at the input's resolution divided by ``stride``."""

    def __init__(self, classes, stride=1, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(8, classes, 1))
        self.pool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()

    def forward(self, x):
        return self.pool(self.body(x))


class Argmax(nn.Module):
    """mmdeploy's with_argmax=True head: (N, 1, H, W) int64 labels."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x).argmax(1, keepdim=True)


class RawPixelsNhwc(nn.Module):
    """uint8 NHWC pixels in, normalised inside; probabilities NHWC at half resolution out."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        x = x.permute(0, 3, 1, 2).float() / 255.0
        return torch.softmax(self.net((x - 0.5) / 0.25), dim=1).permute(0, 2, 3, 1)


class TwoHeads(nn.Module):
    """Main and auxiliary scores, as some training-time exports keep."""

    def __init__(self, net, aux):
        super().__init__()
        self.net, self.aux = net, aux

    def forward(self, x):
        return self.net(x), self.aux(x)


def _export(module, path, example, inputs, outputs, dynamic=None):
    torch.onnx.export(module.eval(), example, str(path), dynamo=False, opset_version=17,
                      input_names=inputs, output_names=outputs, dynamic_axes=dynamic)
    return path


def _frame(seed, height, width):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (4, 6, 3), dtype=np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def _run(path, feed):
    import onnxruntime
    session = onnxruntime.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    return session.run(None, feed)


def _mmdeploy_folder(tmp_path, with_argmax=True):
    """Write an mmdeploy-style work folder: end2end.onnx and its three JSON files."""
    folder = tmp_path / 'work_dir'
    folder.mkdir()
    net = TinyNet(19)
    module = Argmax(net) if with_argmax else net
    _export(module, folder / 'end2end.onnx', torch.zeros(1, 3, SIZE[1], SIZE[0]), ['input'],
            ['output'])
    (folder / 'deploy.json').write_text(json.dumps({
        'version': '1.3.1', 'task': 'Segmentor', 'customs': [],
        'models': [{'name': 'bisenetv2', 'net': 'end2end.onnx', 'weights': '',
                    'backend': 'onnxruntime', 'precision': 'FP32', 'batch_size': 1,
                    'dynamic_shape': False}]}))
    (folder / 'pipeline.json').write_text(json.dumps({'pipeline': {
        'input': ['img'], 'output': ['post_output'], 'tasks': [
            {'type': 'Task', 'module': 'Transform', 'name': 'Preprocess', 'input': ['img'],
             'output': ['prep_output'], 'transforms': [
                 {'type': 'LoadImageFromFile'},
                 {'type': 'Resize', 'keep_ratio': False, 'size': [SIZE[1], SIZE[0]]},
                 {'type': 'Normalize', 'mean': list(MMSEG_MEAN), 'std': list(MMSEG_STD),
                  'to_rgb': True},
                 {'type': 'ImageToTensor', 'keys': ['img']},
                 {'type': 'Collect', 'keys': ['img'], 'meta_keys': ['ori_shape']}]},
            {'name': 'bisenetv2', 'type': 'Task', 'module': 'Net', 'input': ['prep_output'],
             'output': ['infer_output'], 'input_map': {'img': 'input'}},
            {'type': 'Task', 'module': 'mmseg', 'name': 'postprocess',
             'component': 'ResizeMask', 'params': {'with_argmax': with_argmax},
             'output': ['post_output'], 'input': ['prep_output', 'infer_output']}]}}))
    (folder / 'detail.json').write_text(json.dumps({
        'version': '1.3.1', 'codebase': {'task': 'Segmentation', 'codebase': 'mmseg'},
        'codebase_config': {'type': 'mmseg', 'task': 'Segmentation',
                            'with_argmax': with_argmax},
        'onnx_config': {'type': 'onnx', 'input_names': ['input'], 'output_names': ['output'],
                        'opset_version': 17}}))
    return folder


def _mmseg_reference(path, rgb):
    mean, std = np.array(MMSEG_MEAN, np.float32), np.array(MMSEG_STD, np.float32)
    x = (rgb.astype(np.float32) - mean) / std
    (out,) = _run(path, {'input': x.transpose(2, 0, 1)[None]})
    return out[0, 0] if out.ndim == 4 and out.shape[1] == 1 else out[0].argmax(0)


def _segment(model, rgb, **options):
    seg = build_segmenter(model, backend='onnxruntime', device='cpu', precision=None, **options)
    return seg, seg.segment([rgb])[0]


def test_an_mmdeploy_work_folder_runs_with_identical_labels(tmp_path):
    folder = _mmdeploy_folder(tmp_path)
    rgb = _frame(0, SIZE[1], SIZE[0])
    seg, result = _segment(folder, rgb, class_table='cityscapes', cache_dir=tmp_path / 'cache')
    np.testing.assert_array_equal(result.labels, _mmseg_reference(folder / 'end2end.onnx',
                                                                  rgb))
    assert seg.class_names[0] == 'road' and len(seg.class_names) == 19


def test_at_other_sizes_labels_agree_after_resizing(tmp_path):
    folder = _mmdeploy_folder(tmp_path, with_argmax=False)
    for seed, (height, width) in enumerate([(90, 160), (47, 101)]):
        rgb = _frame(seed, height, width)
        _, result = _segment(folder, rgb, class_table='cityscapes',
                             cache_dir=tmp_path / 'cache', confidence=True)
        small = cv2.resize(rgb, SIZE, interpolation=cv2.INTER_LINEAR)
        expected = cv2.resize(_mmseg_reference(folder / 'end2end.onnx', small).astype(
            np.uint8), (width, height), interpolation=cv2.INTER_NEAREST_EXACT)
        assert result.labels.shape == (height, width)
        assert (result.labels == expected).mean() >= 0.999
        assert result.confidence is not None and result.confidence.shape == (height, width)


def test_scores_with_a_sidecar_and_a_class_file(tmp_path):
    net = TinyNet(3, seed=1)
    model = _export(net, tmp_path / 'scores.onnx', torch.zeros(1, 3, SIZE[1], SIZE[0]),
                    ['pixels'], ['scores'])
    (tmp_path / 'classes.yaml').write_text(yaml.safe_dump({'classes': [
        {'name': 'road', 'color': [128, 64, 128]}, {'name': 'car', 'color': [0, 0, 142]},
        {'name': 'sky', 'color': [70, 130, 180]}]}))
    (tmp_path / 'scores.yaml').write_text(yaml.safe_dump({
        'input': {'color': 'RGB', 'range': 1, 'mean': [0.485, 0.456, 0.406],
                  'std': [0.229, 0.224, 0.225]},
        'output': {'kind': 'scores'}, 'classes': 'classes.yaml'}))
    rgb = _frame(2, SIZE[1], SIZE[0])
    seg, result = _segment(model, rgb, cache_dir=tmp_path / 'cache')
    x = (rgb / np.float32(255) - np.array([0.485, 0.456, 0.406], np.float32)) / np.array(
        [0.229, 0.224, 0.225], np.float32)
    (scores,) = _run(model, {'pixels': x.astype(np.float32).transpose(2, 0, 1)[None]})
    np.testing.assert_array_equal(result.labels, scores[0].argmax(0))
    assert seg.class_names == ('road', 'car', 'sky')
    assert tuple(seg.lut[1]) == (0, 0, 142)


def test_uint8_nhwc_bgr_input_and_low_resolution_probabilities(tmp_path):
    module = RawPixelsNhwc(TinyNet(4, stride=2, seed=3))
    model = _export(module, tmp_path / 'raw.onnx',
                    torch.zeros(1, SIZE[1], SIZE[0], 3, dtype=torch.uint8), ['images'],
                    ['probabilities'])
    (tmp_path / 'raw.yaml').write_text(yaml.safe_dump({
        'input': {'color': 'BGR'}, 'output': {'kind': 'probabilities', 'layout': 'NHWC'},
        'classes': 'camvid'}))
    contract = contract_of(model)
    assert (contract.input_layout, contract.input_dtype, contract.mean) == (
        'NHWC', 'uint8', (0.0, 0.0, 0.0))
    rgb = _frame(4, SIZE[1], SIZE[0])
    with pytest.raises(ContractError, match='scores 4 classes but the class table'):
        _segment(model, rgb, cache_dir=tmp_path / 'cache')
    # Four classes: a table of its own.
    (tmp_path / 'four.csv').write_text('name,r,g,b\nroad,128,64,128\ncar,0,0,142\n'
                                       'sky,70,130,180\nperson,220,20,60\n')
    _, result = _segment(model, rgb, cache_dir=tmp_path / 'cache', confidence=True,
                         class_table=str(tmp_path / 'four.csv'))
    (probabilities,) = _run(model, {'images': rgb[None, :, :, ::-1].copy()})
    upsampled = torch.nn.functional.interpolate(
        torch.from_numpy(np.log(probabilities).transpose(0, 3, 1, 2).copy()),
        size=(SIZE[1], SIZE[0]), mode='bilinear', align_corners=False)
    expected = upsampled[0].argmax(0).numpy()
    assert (result.labels == expected).mean() >= 0.999
    assert result.confidence.max() <= 1.0


def test_two_outputs_are_refused_until_one_is_named(tmp_path):
    module = TwoHeads(TinyNet(19, seed=5), TinyNet(19, seed=6))
    model = _export(module, tmp_path / 'two.onnx', torch.zeros(1, 3, SIZE[1], SIZE[0]),
                    ['input'], ['main', 'aux'])
    sidecar = {'input': {'color': 'RGB', 'range': 255, 'mean': list(MMSEG_MEAN),
                         'std': list(MMSEG_STD)},
               'output': {'kind': 'scores'}, 'classes': 'cityscapes'}
    (tmp_path / 'two.yaml').write_text(yaml.safe_dump(sidecar))
    with pytest.raises(ContractError, match=r"2 outputs \['main', 'aux'\]; name the one to use "
                                            'with output.name'):
        contract_of(model)
    sidecar['output']['name'] = 'main'
    (tmp_path / 'two.yaml').write_text(yaml.safe_dump(sidecar))
    assert contract_of(model).output_name == 'main'


@pytest.mark.parametrize('missing,key', [
    ('mean', 'input.mean'), ('color', 'input.color'), ('kind', 'output.kind'),
    ('classes', 'classes (a table name'),
])
def test_each_missing_field_is_refused_in_one_line_naming_its_key(tmp_path, missing, key):
    model = _export(TinyNet(19), tmp_path / 'm.onnx', torch.zeros(1, 3, SIZE[1], SIZE[0]),
                    ['input'], ['output'])
    sidecar = {'input': {'color': 'RGB', 'range': 255, 'mean': list(MMSEG_MEAN),
                         'std': list(MMSEG_STD)},
               'output': {'kind': 'scores'}, 'classes': 'cityscapes'}
    for section in ('input', 'output'):
        sidecar[section].pop(missing, None)
    sidecar.pop(missing, None)
    (tmp_path / 'm.yaml').write_text(yaml.safe_dump(sidecar))
    with pytest.raises(ContractError, match=re.escape(f'give {key}')) as refused:
        contract_of(model)
    assert '\n' not in str(refused.value)


def test_a_contradiction_between_sources_is_refused(tmp_path):
    folder = _mmdeploy_folder(tmp_path)
    (folder / 'end2end.yaml').write_text(yaml.safe_dump({'input': {'color': 'BGR'}}))
    with pytest.raises(ContractError, match="color is 'RGB' in mmdeploy .* but 'BGR' in "
                                            'sidecar'):
        contract_of(folder)


def test_more_than_255_classes_are_refused_for_mono8_labels(tmp_path):
    model = _export(TinyNet(300), tmp_path / 'big.onnx', torch.zeros(1, 3, SIZE[1], SIZE[0]),
                    ['input'], ['output'])
    names = '\n'.join(f'c{i},{i % 256},{i // 256},0' for i in range(300))
    (tmp_path / 'big.csv').write_text('name,r,g,b\n' + names + '\n')
    (tmp_path / 'big.yaml').write_text(yaml.safe_dump({
        'input': {'color': 'RGB', 'range': 1, 'mean': [0, 0, 0], 'std': [1, 1, 1]},
        'output': {'kind': 'scores'}, 'classes': 'big.csv'}))
    with pytest.raises((ContractError, ValueError), match='255'):
        build_segmenter(model, backend='onnxruntime', cache_dir=tmp_path / 'cache')


def test_info_prints_the_contract_and_where_each_field_came_from(tmp_path, capsys):
    from bisenet_ros.tools import info
    folder = _mmdeploy_folder(tmp_path)
    (folder / 'model.yaml').write_text(yaml.safe_dump({'classes': 'cityscapes'}))
    assert info.main(['--model', str(folder)]) == 0
    out = capsys.readouterr().out
    assert 'end2end.onnx: a foreign model' in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith('  ')}
    assert 'mmdeploy work_dir/pipeline.json' in lines['mean']
    assert '(graph)' in lines['input_layout'] and 'sidecar model.yaml' in lines['classes']
    assert info.main(['--model', str(tmp_path / 'missing.onnx')]) == 1
    assert 'not a readable ONNX model' in capsys.readouterr().err


def test_auto_runs_a_foreign_model_at_fp32(tmp_path):
    folder = _mmdeploy_folder(tmp_path, with_argmax=False)
    seg = build_segmenter(folder, class_table='cityscapes', cache_dir=tmp_path / 'cache')
    assert seg.auto_choice is not None and seg.backend.precision == 'fp32'
    rgb = _frame(7, SIZE[1], SIZE[0])
    np.testing.assert_array_equal(seg.segment([rgb])[0].labels,
                                  _mmseg_reference(folder / 'end2end.onnx', rgb))


@pytest.mark.parametrize('width, height', [(513, 513), (100, 60)])
def test_a_fixed_input_of_any_size_runs_as_exported(tmp_path, width, height):
    # Stride 32 is BiSeNet's rule for sizes we choose; a graph's own size is its exporter's.
    model = _export(TinyNet(19, seed=8), tmp_path / 'odd.onnx', torch.zeros(1, 3, height, width),
                    ['input'], ['output'])
    (tmp_path / 'odd.yaml').write_text(yaml.safe_dump({
        'input': {'color': 'RGB', 'range': 1, 'mean': [0.5] * 3, 'std': [0.25] * 3},
        'output': {'kind': 'scores'}, 'classes': 'cityscapes'}))
    rgb = _frame(9, height, width)
    x = (rgb / np.float32(255) - np.float32(0.5)) / np.float32(0.25)
    (scores,) = _run(model, {'input': x.astype(np.float32).transpose(2, 0, 1)[None]})
    seg, result = _segment(model, rgb, cache_dir=tmp_path / 'cache')
    assert seg.input_size == (width, height)
    np.testing.assert_array_equal(result.labels, scores[0].argmax(0))
    assert seg.segment([_frame(10, 77, 131)])[0].labels.shape == (77, 131)


def test_a_graph_past_protobufs_limit_keeps_its_weights_beside_the_wrapped_copy(
        tmp_path, monkeypatch):
    # 2 GiB models are what this is for; the limit lowered, a small one takes the same path.
    monkeypatch.setattr(foreign, 'INLINE_LIMIT', 0)
    folder = _mmdeploy_folder(tmp_path)
    rgb = _frame(11, SIZE[1], SIZE[0])
    seg, result = _segment(folder, rgb, class_table='cityscapes', cache_dir=tmp_path / 'cache')
    assert [p.suffix for p in (tmp_path / 'cache' / 'foreign').iterdir()] in (
        ['.onnx', '.data'], ['.data', '.onnx'])
    np.testing.assert_array_equal(result.labels, _mmseg_reference(folder / 'end2end.onnx',
                                                                  rgb))


def test_a_graph_using_our_tensor_names_is_renamed_not_merged(tmp_path):
    model = _export(TinyNet(19, seed=9), tmp_path / 'named.onnx',
                    torch.zeros(1, 3, SIZE[1], SIZE[0]), ['image'], ['logits'])
    (tmp_path / 'named.yaml').write_text(yaml.safe_dump({
        'input': {'color': 'RGB', 'range': 255, 'mean': list(MMSEG_MEAN),
                  'std': list(MMSEG_STD)},
        'output': {'kind': 'scores'}, 'classes': 'cityscapes'}))
    rgb = _frame(11, SIZE[1], SIZE[0])
    _, result = _segment(model, rgb, cache_dir=tmp_path / 'cache')
    mean, std = np.array(MMSEG_MEAN, np.float32), np.array(MMSEG_STD, np.float32)
    (scores,) = _run(model, {'image': ((rgb - mean) / std).transpose(2, 0, 1)[None]
                             .astype(np.float32)})
    np.testing.assert_array_equal(result.labels, scores[0].argmax(0))


def test_segment_and_fleet_run_an_mmdeploy_folder_alike(tmp_path):
    from bag_helpers import write_camera_bag
    from bisenet_ros.media import bags
    from bisenet_ros.tools.segment import main as segment
    from bisenet_ros.tools.segment_fleet import main as fleet
    folder = _mmdeploy_folder(tmp_path)
    write_camera_bag(tmp_path / 'drives' / 'drive', 3)
    common = ['--model', str(folder), '--class-table', 'cityscapes', '--cache-dir',
              str(tmp_path / 'cache')]
    assert segment([str(tmp_path / 'drives' / 'drive'), '-o', str(tmp_path / 'one'),
                    '--outputs', 'labels', *common]) == 0
    assert fleet([str(tmp_path / 'drives'), '-o', str(tmp_path / 'many'), '--labels-only',
                  *common]) == 0
    report = json.loads((tmp_path / 'many' / 'fleet-report.json').read_text())
    assert report['model']['path'] == str(folder)

    def labels(bag):
        return [m[2:] for m in bags.read_messages(bag) if m[0].endswith('/labels')]
    assert len(labels(tmp_path / 'one')) == 3
    assert labels(tmp_path / 'one') == labels(tmp_path / 'many' / 'drive')


def test_int8_of_a_foreign_model_only_through_calibration_and_the_gate(tmp_path):
    folder = _mmdeploy_folder(tmp_path, with_argmax=False)
    frames = [_frame(20 + i, SIZE[1], SIZE[0]) for i in range(8)]
    options = {'backend': 'onnxruntime', 'device': 'cpu', 'precision': 'int8',
               'class_table': 'cityscapes', 'cache_dir': tmp_path / 'cache'}
    with pytest.raises(BackendUnavailableError, match='int8'):
        build_segmenter(folder, **options)  # no frames: no int8
    # Frames given, the measured agreement is stored and judged by the gate.
    seg = build_segmenter(folder, calibration_images=frames, int8_min_agreement=0.0,
                          **options)
    agreement = seg.backend.metadata['int8_agreement']
    assert seg.backend.precision == 'int8' and 0.0 < agreement <= 1.0
    # A bar above what was measured refuses the file, with the figure.
    # The gate judges the figure the cached file carries: one below the bar is refused.
    import onnx
    from bisenet_ros.runtime.export import set_metadata
    proto = onnx.load(str(seg.backend.path))
    set_metadata(proto, dict(seg.backend.metadata, int8_agreement=0.5))
    onnx.save(proto, str(seg.backend.path))
    with pytest.raises(ValueError, match='50.00% of pixels .* below int8_min_agreement'):
        build_segmenter(folder, calibration_images=frames, **options)
