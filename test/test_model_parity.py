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
Parity with the reference networks: logits and argmax of all four reference sets.

Each set's weights come from the fixtures' deterministic fill, saved in the
layout users' files have, then loaded through ``load_checkpoint``.
Tolerance: max|d| <= 1e-4 * max|ref|; argmax may differ only at near-ties.
"""

from bisenet_ros.checkpoint import load_checkpoint
from helpers import DATA, reference_input, reference_state_dict, shared_path
import numpy as np
import pytest
import torch

SETS = ('coincheung_v1', 'coincheung_v2', 'mmseg_v1', 'mmseg_v2')


def _write_reference_checkpoint(name, directory):
    state_dict = reference_state_dict(name)
    path = directory / f'{name}.pth'
    if name.startswith('mmseg'):
        torch.save({'meta': {'iter': 160000}, 'state_dict': state_dict}, path)
    else:
        torch.save(state_dict, path)
    return path


@pytest.fixture(scope='module')
def loaded(tmp_path_factory):
    """Load each reference set once per module: {name: (model, info)}."""
    directory = tmp_path_factory.mktemp('reference')
    return {name: load_checkpoint(_write_reference_checkpoint(name, directory))
            for name in SETS}


def _run(model, case):
    with torch.inference_mode():
        return model(reference_input(case)).numpy()


def _assert_argmax_matches(logits, expected, scale):
    top2 = np.sort(logits, axis=1)[:, -2:]
    near_tie = (top2[:, 1] - top2[:, 0]) < 1e-3 * scale
    differs = logits.argmax(axis=1) != expected
    assert not (differs & ~near_tie).any(), f'{int((differs & ~near_tie).sum())} pixels differ'


@pytest.mark.parametrize('name', SETS)
@pytest.mark.parametrize('case', ['128x256', 'b2_128x256'])
def test_logits_and_argmax_match_reference(loaded, name, case):
    model, _ = loaded[name]
    expected = np.load(DATA / f'parity_{name}.npz')
    logits = _run(model, case)
    assert logits.shape[2:] == tuple(int(v) for v in case.split('_')[-1].split('x'))
    scale = float(expected[f'max_abs_{case}'])
    diff = np.abs(logits[:, :, ::4, ::4] - expected[f'logits_s4_{case}']).max()
    assert diff <= 1e-4 * scale
    _assert_argmax_matches(logits, expected[f'argmax_{case}'], scale)


@pytest.mark.parametrize('name', SETS)
def test_larger_input_matches_reference(loaded, name):
    model, _ = loaded[name]
    expected = np.load(DATA / f'parity_{name}.npz')
    logits = _run(model, '256x512')
    ref = expected['logits_sub8_256x512']
    scale = float(np.abs(ref).max())
    assert np.abs(logits[:, :, ::8, ::8] - ref).max() <= 1e-4 * scale
    _assert_argmax_matches(logits, expected['argmax_256x512'], scale)


@pytest.mark.parametrize('name', SETS)
def test_full_logits_match_team_fixtures(loaded, name):
    fixtures = np.load(shared_path('reference', name, 'fixtures.npz'))
    model, _ = loaded[name]
    ref = fixtures['logits_128x256']
    assert np.abs(_run(model, '128x256') - ref).max() <= 1e-4 * np.abs(ref).max()


@pytest.mark.parametrize('name', SETS)
def test_batch_equals_single_images(loaded, name):
    model, _ = loaded[name]
    batch = reference_input('b2_128x256')
    with torch.inference_mode():
        together = model(batch)
        alone = torch.cat([model(batch[i:i + 1]) for i in range(2)])
    assert torch.allclose(together, alone, rtol=0, atol=1e-4 * together.abs().max().item())
