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
Model files are untrusted input: one judgement at open (issue 22, defects 1-3 and 9).

A file named with --model that lies, is damaged or is a graph bomb is refused
in one line naming it; the same file beside a checkpoint as its int8 sibling
is skipped with one warning and the checkpoint runs. The hostile files are
tiny graphs from test/model_files.py.
"""

import json
import logging
import os
from pathlib import Path
import re
import shutil
import subprocess
import sys

from bisenet_ros.resources import demo_model_path
from bisenet_ros.runtime import BackendUnavailableError, build_segmenter
from bisenet_ros.runtime.model_check import ModelFileError
from helpers import needs
from model_files import as_foreign, BOMBS, LIES, with_external_tensor, write_model
import numpy as np
import pytest

NAMED = {'backend': 'onnxruntime', 'device': 'cpu', 'precision': None, 'threads': 1}


def _one_line(message, path):
    assert '\n' not in message and 'Traceback' not in message
    assert str(path) in message
    assert len(message) < 600


@pytest.mark.parametrize('lie', sorted(LIES))
def test_a_named_file_whose_graph_or_metadata_lies_is_refused_naming_it(tmp_path, lie):
    path = write_model(tmp_path / 'model.onnx', lie)
    with pytest.raises(ModelFileError, match=re.escape(LIES[lie])) as caught:
        build_segmenter(path, batch=2, cache_dir=tmp_path, **NAMED)
    _one_line(str(caught.value), path)


@pytest.mark.parametrize('backend', ['onnxruntime', 'openvino', 'auto'])
def test_labels_beyond_the_class_count_are_refused_on_the_probe_run(tmp_path, backend):
    path = write_model(tmp_path / 'model.onnx', 'labels of 200')
    with pytest.raises(ModelFileError, match='holds 200 on a probe run, but the model has 19'):
        build_segmenter(path, cache_dir=tmp_path, **dict(NAMED, backend=backend))


@pytest.mark.parametrize('content', [b'', b'not onnx at all\n' * 40, 'half', 'folder',
                                     '/dev/zero', '1 TiB of zeros'])
def test_a_damaged_or_foreign_file_is_refused_in_one_line(tmp_path, content):
    path = tmp_path / 'model.onnx'
    if content == 'folder':
        path.mkdir()
    elif content == '/dev/zero':  # endless: read whole, it would fill the memory
        path.symlink_to('/dev/zero')
    elif content == '1 TiB of zeros':
        with open(path, 'wb') as stream:
            stream.truncate(1 << 40)  # sparse: no disk used
    elif content == 'half':
        good = write_model(tmp_path / 'good.onnx').read_bytes()
        path.write_bytes(good[:len(good) // 2])
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError) as caught:
        build_segmenter(path, cache_dir=tmp_path, **NAMED)
    _one_line(str(caught.value), path)


@pytest.mark.parametrize('bomb', BOMBS)
def test_a_graph_bomb_is_refused_with_its_figure_before_anything_allocates(tmp_path, bomb):
    path = write_model(tmp_path / 'bomb.onnx', bomb)
    assert path.stat().st_size < 3000
    figure = 'depends on values known only at run time' if bomb == 'run-time shape' else \
        r'needs [\d.]+ TiB at batch 4 .* more than the model memory limit'
    with pytest.raises(ModelFileError, match=figure) as caught:
        build_segmenter(path, cache_dir=tmp_path, **NAMED)
    _one_line(str(caught.value), path)


def test_max_model_memory_bounds_a_graph_and_raises_the_default(tmp_path):
    path = write_model(tmp_path / 'model.onnx')
    with pytest.raises(ModelFileError, match=r'needs 2\.8 MiB at batch 8 \(its largest tensor, '
                                             r"'scores', 2\.4 MiB\), more than the model "
                                             r'memory limit 2\.0 MiB \(max_model_memory\)'):
        build_segmenter(path, cache_dir=tmp_path, max_model_memory=2, batch=8, **NAMED)
    segmenter = build_segmenter(path, cache_dir=tmp_path, max_model_memory=3, batch=8, **NAMED)
    assert segmenter.segment([np.zeros((20, 30, 3), np.uint8)])[0].labels.shape == (20, 30)


@pytest.mark.parametrize('where, reason', [
    ('../outside.bin', 'outside its folder'), ('/etc/hostname', 'outside its folder'),
    ('link.bin', 'outside its folder'), ('missing.bin', 'which is missing'),
    ('short.bin', 'declares 228 B at offset 0'), ('huge.bin', r'needs 4\.0 TiB')])
@pytest.mark.parametrize('ours', [True, False], ids=['ours', 'foreign'])
def test_external_data_outside_the_folder_short_or_huge_is_refused(tmp_path, where, reason,
                                                                   ours):
    folder = tmp_path / 'model'
    folder.mkdir()
    path = write_model(folder / 'model.onnx')
    if not ours:
        as_foreign(path)
        reason = reason.replace(r'needs 4\.0 TiB', r'stores 4\.0 TiB')
    (tmp_path / 'outside.bin').write_bytes(bytes(228))
    if where == 'link.bin':
        (folder / 'link.bin').symlink_to(tmp_path / 'outside.bin')
    sizes = {'../outside.bin': None, 'short.bin': 100, 'huge.bin': 1 << 42}
    dims = (1 << 20, 1 << 20) if where == 'huge.bin' else (19, 3, 1, 1)
    with_external_tensor(path, where, dims, sizes.get(where))
    with pytest.raises(ValueError, match=reason) as caught:
        build_segmenter(path, cache_dir=tmp_path, **NAMED)
    _one_line(str(caught.value), path)


@pytest.mark.parametrize('backend', ['onnxruntime', 'openvino'])
def test_a_graph_the_runtime_cannot_compile_is_one_line_naming_it(tmp_path, backend):
    path = write_model(tmp_path / 'model.onnx', 'an unknown com.microsoft op')
    with pytest.raises(BackendUnavailableError, match=f'{backend} cannot load this graph'
                       ) as caught:
        build_segmenter(path, cache_dir=tmp_path, **dict(NAMED, backend=backend))
    _one_line(str(caught.value), path)


# --- The same files beside a checkpoint: skipped with one warning, the checkpoint runs.

@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    """Return a copy of the demonstration checkpoint in a folder of its own, and a cache."""
    folder = tmp_path_factory.mktemp('checkpoint')
    shutil.copy(demo_model_path(), folder / 'demo.safetensors')
    return folder / 'demo.safetensors', tmp_path_factory.mktemp('cache')


def _sibling_metadata():
    """Return the shipped sibling's metadata (its parent: the demonstration checkpoint)."""
    from bisenet_ros.runtime.export import read_metadata
    demo = demo_model_path()
    meta = read_metadata(demo.with_name(f'{demo.stem}_int8.onnx'))
    # Run by onnxruntime, the backend the tests ask for, its gate left out (measured elsewhere).
    return dict(meta, int8_activations='u8')


def _auto(checkpoint, cache, caplog, **options):
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger='bisenet_ros.runtime'):
        segmenter = build_segmenter(checkpoint, cache_dir=cache, threads=1,
                                    int8_min_agreement=0.0, **options)
    return segmenter, [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def _write_sibling(checkpoint, kind):
    path = checkpoint.with_name(f'{checkpoint.stem}_int8.onnx')
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    meta = _sibling_metadata()
    if kind == 'folder':
        path.mkdir()
    elif kind == '/dev/zero':
        path.symlink_to('/dev/zero')
    elif kind in ('empty', 'text'):
        path.write_bytes(b'' if kind == 'empty' else b'{"not": "onnx"}\n' * 64)
    elif kind == 'truncated':
        demo = demo_model_path()
        shipped = demo.with_name(f'{demo.stem}_int8.onnx').read_bytes()
        path.write_bytes(shipped[:len(shipped) // 3])
    elif kind == 'another checkpoint, invalid metadata':
        meta.update(int8_parent_sha256='0' * 64, int8_evidence='trust me')
        write_model(path, size=meta['input_size'], meta=meta)
    else:
        write_model(path, None if kind == 'honest' else kind, size=meta['input_size'], meta=meta)
    return path


SIBLINGS = ['folder', '/dev/zero', 'empty', 'text', 'truncated',
            'another checkpoint, invalid metadata', *sorted(LIES), 'ConstantOfShape', 'Resize',
            'run-time shape']


@pytest.mark.parametrize('kind', SIBLINGS)
def test_a_bad_sibling_is_skipped_with_one_warning_and_the_checkpoint_runs(
        checkpoint, caplog, kind):
    needs('onnxruntime', 'int8')
    model, cache = checkpoint
    sibling = _write_sibling(model, kind)
    segmenter, warnings = _auto(model, cache, caplog, backend='onnxruntime')
    assert Path(segmenter.info.path) != sibling and segmenter.auto_choice.precision != 'int8'
    assert len(warnings) == 1 and str(sibling) in warnings[0], warnings
    for options in ({'precision': 'fp32'}, {'backend': 'torch'}):  # never stops the checkpoint
        _, warnings = _auto(model, cache, caplog, **options)
        assert not [w for w in warnings if str(sibling) in w], warnings


@pytest.mark.parametrize('kind', ['labels of 200', 'an unknown com.microsoft op'])
def test_a_sibling_failing_to_run_hands_over_to_the_next_candidate(checkpoint, caplog, kind):
    needs('onnxruntime', 'int8')
    model, cache = checkpoint
    sibling = _write_sibling(model, kind)
    segmenter, warnings = _auto(model, cache, caplog, backend='onnxruntime')
    assert segmenter.auto_choice.precision == 'fp32'
    assert len(warnings) == 1 and str(sibling) in warnings[0], warnings
    _write_sibling(model, 'honest')
    assert _auto(model, cache, caplog, backend='onnxruntime')[0].auto_choice.precision == 'int8'


# --- The tools: one line, no traceback.

def _hostile(tmp_path, kind):
    path = tmp_path / 'hostile.onnx'
    if kind == 'corrupt':
        path.write_bytes(b'\x08\x07garbage' * 50)
    elif kind == 'folder':
        path.mkdir()
    elif kind == 'external data outside':
        (tmp_path / 'secret.bin').write_bytes(bytes(228))
        (tmp_path / 'inside').mkdir()
        path = write_model(tmp_path / 'inside' / 'hostile.onnx')
        with_external_tensor(path, '../secret.bin')
    else:
        write_model(path, kind)
    return path


@pytest.mark.parametrize('kind', ['corrupt', 'external data outside', 'a custom operator',
                                  'an unknown com.microsoft op', 'ConstantOfShape'])
def test_segment_refuses_a_hostile_model_in_one_line(tmp_path, capsys, kind):
    from bisenet_ros.tools import segment
    import cv2
    cv2.imwrite(str(tmp_path / 'frame.png'), np.zeros((48, 64, 3), np.uint8))
    path = _hostile(tmp_path, kind)
    status = segment.main([str(tmp_path / 'frame.png'), '-o', str(tmp_path / 'out'),
                           '--model', str(path), '--threads', '1',
                           '--cache-dir', str(tmp_path / 'cache')], prog='bisenet segment')
    error = capsys.readouterr().err.strip()
    assert status == 1
    _one_line(error.splitlines()[-1], path)
    assert 'Traceback' not in error


@pytest.mark.parametrize('kind', ['corrupt', 'folder', 'a custom operator',
                                  'an unknown com.microsoft op', 'Expand'])
def test_export_check_refuses_a_hostile_file_in_one_line(tmp_path, capsys, kind):
    from bisenet_ros.tools import export
    path = _hostile(tmp_path, kind)
    status = export.main(['--check', str(path), '--data', str(tmp_path)],
                         prog='bisenet export')
    error = capsys.readouterr().err.strip()
    assert status == 2
    assert len(error.splitlines()) == 1, error
    _one_line(error, path)


def test_opening_a_2_kb_bomb_stays_under_200_mib(tmp_path):
    path = write_model(tmp_path / 'bomb.onnx', 'ConstantOfShape')
    script = f"""
import json
from bisenet_ros.runtime.build import build_segmenter
from bisenet_ros.runtime.model_check import ModelFileError
import onnx.shape_inference  # imported before the first figure: only the opening counts
def peak_kib():
    status = open('/proc/self/status').read()
    return int(status.split('VmHWM:')[1].split()[0])
before = peak_kib()
for backend in ('onnxruntime', 'openvino', 'auto'):
    try:
        build_segmenter({str(path)!r}, backend=backend, device='cpu', precision=None,
                        cache_dir={str(tmp_path)!r})
    except ModelFileError as exc:
        refusal = str(exc)
print(json.dumps({{'grown_kib': peak_kib() - before, 'refusal': refusal}}))
"""
    done = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert 'TiB' in report['refusal'] or 'max_model_memory' in report['refusal'], report
    assert report['grown_kib'] < 200 * 1024, report
