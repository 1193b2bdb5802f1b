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


"""Checkpoint formats, safe loading and the errors users see for bad files."""

import json
from pathlib import Path
import pickle

from bisenet_ros import cityscapes
from bisenet_ros.checkpoint import (CheckpointError, CheckpointNotFoundError, load_checkpoint,
                                    NORMALISATION, save_checkpoint)
from bisenet_ros.checkpoint.mmseg_keys import mmseg_to_internal
from bisenet_ros.models import build_model
from helpers import DATA, reference_input, reference_state_dict
import numpy as np
import pytest
from safetensors import safe_open
import torch

X = reference_input('128x256')


@pytest.fixture(scope='module')
def v2_state_dict():
    """Return CoinCheung V2 weights as published: train-mode keys, aux heads included."""
    return reference_state_dict('coincheung_v2')


def _save(obj, path):
    torch.save(obj, path)
    return path


def _logits(model):
    with torch.inference_mode():
        return model(X)


def test_coincheung_train_mode_file_loads_with_its_facts(tmp_path, v2_state_dict):
    model, info = load_checkpoint(_save(v2_state_dict, tmp_path / 'v2.pth'))
    assert (info.arch, info.source, info.num_classes) == ('bisenetv2', 'coincheung', 19)
    assert info['arch'] == 'bisenetv2'
    assert info.class_names == cityscapes.CLASS_NAMES
    assert info.palette == cityscapes.PALETTE
    assert (info.mean, info.std) == NORMALISATION['coincheung']
    assert not model.training
    assert all(k.startswith('aux') for k in info.unused_keys) and info.unused_keys


def test_eval_mode_and_module_prefixed_files_give_the_same_network(tmp_path, v2_state_dict):
    eval_only = {k: v for k, v in v2_state_dict.items() if not k.startswith('aux')}
    prefixed = {'module.' + k: v for k, v in v2_state_dict.items()}
    first, _ = load_checkpoint(_save(eval_only, tmp_path / 'eval.pth'))
    second, _ = load_checkpoint(_save(prefixed, tmp_path / 'ddp.pth'))
    assert torch.equal(_logits(first), _logits(second))


def test_aux_true_builds_training_heads_with_their_weights(tmp_path, v2_state_dict):
    model, info = load_checkpoint(_save(v2_state_dict, tmp_path / 'v2.pth'), aux=True)
    assert info.unused_keys == []
    assert torch.equal(model.aux3.conv_out[1].weight, v2_state_dict['aux3.conv_out.1.weight'])
    model.train()
    outputs = model(reference_input('b2_128x256'))
    assert len(outputs) == 5 and all(o.shape == (2, 19, 128, 256) for o in outputs)


def test_mmseg_meta_with_numpy_scalars_loads_without_code_execution(tmp_path):
    names = tuple(f'c{i}' for i in range(19))
    meta = {'seed': np.int64(7), 'lr': np.float64(0.01), 'CLASSES': names,
            'PALETTE': [[i, i, i] for i in range(19)], 'shape': np.array([1024, 2048])}
    path = _save({'meta': meta, 'state_dict': reference_state_dict('mmseg_v1'),
                  'optimizer': {'state': {}}}, tmp_path / 'mm.pth')
    _, info = load_checkpoint(path)
    assert (info.arch, info.source, info.variant) == ('bisenetv1', 'mmseg', 'mmseg')
    assert info.class_names == names and info.palette[3] == (3, 3, 3)
    assert info.mean == pytest.approx((0.485, 0.456, 0.406), abs=1e-6)


class _Payload:
    def __reduce__(self):
        return (open, ('/tmp/bisenet_ros_payload_ran', 'w'))


def test_file_that_would_run_code_is_refused_and_nothing_runs(tmp_path, v2_state_dict):
    marker = Path('/tmp/bisenet_ros_payload_ran')
    path = _save({'state_dict': v2_state_dict, 'meta': _Payload()}, tmp_path / 'evil.pth')
    marker.unlink(missing_ok=True)
    with pytest.raises(CheckpointError, match='refused'):
        load_checkpoint(path)
    assert not marker.exists()


class _System:
    def __reduce__(self):
        import os
        return (os.system, ('touch /tmp/bisenet_ros_payload_ran',))


@pytest.mark.parametrize('payload, culprit', [
    (lambda: {'model': _System()}, 'posix.system'),
    (lambda: {'state_dict': {}, 'meta': {'x': np.array([None], dtype=object)}},
     'numpy.dtypes.ObjectDType'),
])
@pytest.mark.parametrize('container', ['zip', 'raw pickle'])
def test_a_refused_pickle_names_what_it_asked_for_and_never_suggests_unsafe_loading(
        tmp_path, payload, culprit, container):
    marker = Path('/tmp/bisenet_ros_payload_ran')
    marker.unlink(missing_ok=True)
    path = tmp_path / 'evil.pth'
    if container == 'zip':
        torch.save(payload(), path)
    else:  # what torch < 1.6 wrote
        path.write_bytes(pickle.dumps(payload(), protocol=2))
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    message = str(err.value)
    assert 'refused as unsafe' in message and culprit in message
    assert 'weights_only' not in message and 'trusted source' not in message
    assert message.endswith('torch.save(model.state_dict(), path).')
    assert not marker.exists()


def test_a_truncated_raw_pickle_is_reported_as_corrupt_in_full(tmp_path, v2_state_dict):
    path = tmp_path / 'cut.pth'
    path.write_bytes(pickle.dumps({k: v.tolist() for k, v in list(v2_state_dict.items())[:3]},
                                  protocol=2)[:60])
    with pytest.raises(CheckpointError, match=r'corrupt or truncated checkpoint \(\w+'):
        load_checkpoint(path)


def test_missing_path_is_reported(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match='not found'):
        load_checkpoint(tmp_path / 'nope.pth')


def test_a_non_checkpoint_file_is_named_as_such(tmp_path):
    path = tmp_path / 'notes.pth'
    path.write_text('these are not weights\n')
    with pytest.raises(CheckpointError, match='not a checkpoint'):
        load_checkpoint(path)


def test_a_pickled_non_state_dict_is_not_a_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match='not a'):
        load_checkpoint(_save([1, 2, 3], tmp_path / 'list.pth'))


@pytest.mark.parametrize('suffix', ['pth', 'safetensors'])
def test_truncated_files_are_reported_as_corrupt(tmp_path, v2_state_dict, suffix):
    path = tmp_path / f'whole.{suffix}'
    if suffix == 'pth':
        _save(v2_state_dict, path)
    else:
        save_checkpoint(path, build_model('bisenetv2', aux=False), {'arch': 'bisenetv2'})
    data = path.read_bytes()
    cut = tmp_path / f'cut.{suffix}'
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match='corrupt or truncated'):
        load_checkpoint(cut)


def test_unknown_layout_names_closest_format_and_the_differing_keys(tmp_path, v2_state_dict):
    broken = dict(v2_state_dict)
    broken['bga.extra.weight'] = broken.pop('bga.conv.0.weight')
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(_save(broken, tmp_path / 'odd.pth'))
    message = str(err.value)
    assert 'Closest known format: coincheung bisenetv2' in message
    assert 'bga.conv.0.weight' in message and 'bga.extra.weight' in message


def test_obsolete_coincheung_v1_layout_is_rejected_with_the_reason(tmp_path):
    old = reference_state_dict('coincheung_v1')
    old['ffm.conv1.weight'] = old.pop('ffm.conv.weight')
    old['ffm.conv2.weight'] = torch.zeros(256, 64, 1, 1)
    with pytest.raises(CheckpointError, match='obsolete CoinCheung BiSeNetV1.*_new'):
        load_checkpoint(_save(old, tmp_path / 'model_final_v1_city.pth'))


def test_obsolete_coincheung_v2_pixelshuffle_head_is_rejected(tmp_path, v2_state_dict):
    old = dict(v2_state_dict)
    old['head.conv_out.0.weight'] = torch.zeros(19 * 64, 1024, 3, 3)
    with pytest.raises(CheckpointError, match='obsolete CoinCheung BiSeNetV2.*PixelShuffle'):
        load_checkpoint(_save(old, tmp_path / 'old_v2.pth'))


def test_requested_arch_must_match_the_file(tmp_path, v2_state_dict):
    with pytest.raises(CheckpointError, match="holds a bisenetv2 .*arch='bisenetv1'"):
        load_checkpoint(_save(v2_state_dict, tmp_path / 'v2.pth'), arch='bisenetv1')


def test_other_class_counts_load(tmp_path):
    model = build_model('bisenetv1', num_classes=11, aux=False)
    _, info = load_checkpoint(_save(model.state_dict(), tmp_path / 'v1_11.pth'))
    assert info.num_classes == 11 and len(info.class_names) == len(info.palette) == 11
    assert len(set(info.palette)) == 11


def test_own_format_round_trips_weights_and_metadata(tmp_path, v2_state_dict):
    model, info = load_checkpoint(_save(v2_state_dict, tmp_path / 'v2.pth'))
    meta = info.to_metadata()
    meta.update(input_size=[512, 256], training={'data': 'camvid'})
    path = tmp_path / 'own.safetensors'
    save_checkpoint(path, model, meta)
    again, again_info = load_checkpoint(path)
    assert torch.equal(_logits(model), _logits(again))
    assert again_info.source == 'bisenet_ros' and again_info.input_size == (512, 256)
    assert again_info.metadata['training'] == {'data': 'camvid'}
    with safe_open(str(path), framework='pt') as f:
        stored = json.loads(f.metadata()['bisenet_ros'])
    assert stored['arch'] == 'bisenetv2' and stored['format_version'] == 1


@pytest.mark.parametrize('arch', ['v1', 'v2'])
def test_mmseg_rename_rules_agree_with_the_reference_key_map(arch):
    for line in (DATA / f'keymap_coincheung_to_mmseg_{arch}.tsv').read_text().splitlines():
        internal, mmseg = line.split('\t')[:2]
        assert mmseg_to_internal(mmseg, f'bisenet{arch}') == internal


@pytest.mark.parametrize('name', ['coincheung_v1', 'coincheung_v2'])
def test_state_dict_names_and_shapes_equal_coincheung(name):
    expected = [line.split('\t')[:2] for line in
                (DATA / f'keys_{name}.txt').read_text().splitlines()]
    model = build_model(f'bisenet{name[-2:]}', aux=True)
    got = [[k, ','.join(str(s) for s in v.shape)] for k, v in model.state_dict().items()]
    assert got == expected


def test_parameter_counts_match_the_reference():
    def count(model):
        return sum(p.numel() for p in model.parameters())
    assert count(build_model('bisenetv1', aux=False)) == 13275539
    assert count(build_model('bisenetv2', aux=False)) == 3358627
    assert count(build_model('bisenetv1', aux=True)) == 13425721
    assert count(build_model('bisenetv2', aux=True)) == 5231487


@pytest.fixture(scope='module')
def own_file(tmp_path_factory):
    """Return (tensors, metadata) of a valid project-format V2 checkpoint."""
    from safetensors.torch import load_file
    path = tmp_path_factory.mktemp('own') / 'v2.safetensors'
    save_checkpoint(path, build_model('bisenetv2', aux=False),
                    {'arch': 'bisenetv2', 'input_size': [256, 128]})
    with safe_open(str(path), framework='pt') as f:
        meta = json.loads(f.metadata()['bisenet_ros'])
    return load_file(str(path)), meta


def _write_own(path, tensors, meta):
    from safetensors.torch import save_file
    save_file(tensors, str(path), metadata={'bisenet_ros': json.dumps(meta)})
    return path


@pytest.mark.parametrize('change, field', [
    ({'format_version': '2'}, 'format_version'),
    ({'format_version': True}, 'format_version'),
    ({'num_classes': '19'}, 'num_classes'),
    ({'class_names': 'road'}, 'class_names'),
    ({'class_names': ['road'] * 18 + [7]}, 'class_names'),
    ({'palette': [[300, 0, 0]] * 19}, 'palette'),
    ({'palette': [[0, 0]] * 19}, 'palette'),
    ({'mean': [0.5]}, 'mean'),
    ({'mean': [0.5, 'x', 0.5]}, 'mean'),
    ({'std': [0.2, 0.0, 0.2]}, 'std'),
    ({'std': [0.2, -1.0, 0.2]}, 'std'),
    ({'input_size': [65536, 65536]}, 'input_size'),
    ({'input_size': [1000, 512]}, 'input_size'),
    ({'input_size': [512]}, 'input_size'),
])
def test_malformed_metadata_is_refused_naming_the_field(tmp_path, own_file, change, field):
    tensors, meta = own_file
    path = _write_own(tmp_path / 'bad.safetensors', tensors, dict(meta, **change))
    with pytest.raises(CheckpointError, match=f'metadata {field} = .* expected'):
        load_checkpoint(path)


@pytest.mark.parametrize('meta', [['arch', 'bisenetv2'], 'bisenetv2', 7])
def test_metadata_that_is_not_an_object_is_refused(tmp_path, own_file, meta):
    path = _write_own(tmp_path / 'bad.safetensors', own_file[0], meta)
    with pytest.raises(CheckpointError, match='expected a JSON object'):
        load_checkpoint(path)


@pytest.mark.parametrize('value, problem', [
    (float('nan'), 'NaN or infinite'), (float('inf'), 'NaN or infinite'),
    (-float('inf'), 'NaN or infinite')])
@pytest.mark.parametrize('container', ['pth', 'safetensors'])
def test_non_finite_weights_are_refused_naming_the_tensor(tmp_path, v2_state_dict, own_file,
                                                          value, problem, container):
    if container == 'pth':
        weights = {k: v.clone() for k, v in v2_state_dict.items()}
        key = 'head.conv_out.1.weight'
        weights[key].view(-1)[3] = value
        path = _save(weights, tmp_path / 'bad.pth')
    else:
        tensors, meta = own_file
        key = next(k for k in tensors if k.endswith('bias') and tensors[k].is_floating_point())
        tensors = dict(tensors, **{key: tensors[key].clone()})
        tensors[key].view(-1)[0] = value
        path = _write_own(tmp_path / 'bad.safetensors', tensors, meta)
    with pytest.raises(CheckpointError, match=f'{key} holds {problem}'):
        load_checkpoint(path)


def test_negative_variances_and_scalar_weights_are_refused(tmp_path, v2_state_dict):
    weights = {k: v.clone() for k, v in v2_state_dict.items()}
    key = next(k for k in weights if k.endswith('running_var'))
    weights[key][0] = -1.0
    with pytest.raises(CheckpointError, match=f'{key} has negative variances'):
        load_checkpoint(_save(weights, tmp_path / 'var.pth'))
    scalars = {k: v.reshape(-1)[0].clone() for k, v in v2_state_dict.items()}
    with pytest.raises(CheckpointError, match='is a scalar'):
        load_checkpoint(_save(scalars, tmp_path / 'scalars.pth'))
