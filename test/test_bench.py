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

"""bisenet bench's arithmetic figures: FLOP counts, GEMM roofs, GOP/s rows and the ISA limit."""

import collections
import json
import os
import subprocess
import sys

from bisenet_ros.models import build_model
from bisenet_ros.runtime import hardware
from bisenet_ros.tools import peaks
import helpers
import numpy as np
import onnx
import pytest


def test_network_flops_match_the_published_cost_and_scale_with_pixels():
    model = build_model('bisenetv2', aux=False)
    full = peaks.network_gflop(model, (1024, 512))
    # BiSeNetV2 at 1024x512 is ~49.4 GFLOP (multiply-add = 2), as the issue measured it.
    assert 48.0 < full < 51.0
    assert abs(peaks.network_gflop(model, (512, 256)) * 4 / full - 1) < 0.02


def test_int8_gemm_runs_integer_kernels_and_computes_the_product(tmp_path):
    helpers.needs('onnxruntime', 'int8')
    import onnxruntime as ort
    path = tmp_path / 'gemm.onnx'
    peaks.gemm_file(path, 'int8', n=64)
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / 'optimised.onnx')
    session = ort.InferenceSession(str(path), options, providers=['CPUExecutionProvider'])
    ops = collections.Counter(n.op_type for n in
                              onnx.load(options.optimized_model_filepath).graph.node)
    integer = {'MatMulIntegerToFloat', 'QLinearMatMul', 'MatMulInteger'}
    assert not ops['MatMul'] and ops.keys() & integer, ops
    x = np.random.default_rng(2).uniform(-2, 2, (64, 64)).astype(np.float32)
    weights = {t.name: onnx.numpy_helper.to_array(t)
               for t in onnx.load(str(path)).graph.initializer}
    expected = np.clip(np.round(x / 0.02) + 128, 0, 255) - 128
    expected = (expected * 0.02) @ (weights['wq'].astype(np.float32) * 0.01)
    np.testing.assert_allclose(session.run(None, {'x': x})[0], expected, rtol=1e-3, atol=1e-3)


def _bench(tmp_path, *extra, env=None):
    out = tmp_path / 'bench.json'
    done = subprocess.run(
        [sys.executable, '-m', 'bisenet_ros.tools.bench', '--archs', 'bisenetv2', '--input-size',
         '64x32', '--batch', '1', '--repeats', '1', '--warmup', '0', '--json', str(out),
         *extra], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, json.loads(out.read_text())


def test_bench_rows_carry_gops_against_the_roof_of_what_ran(tmp_path):
    stdout, report = _bench(tmp_path, '--configs', 'torch:fp32:contiguous', 'auto:auto')
    rows = report['results']
    assert 'GOP/s' in stdout and 'GEMM roofs here' in stdout
    for row in rows:
        assert row['network_gflop'] > 0 and row['network_gops'] > 0
        ran = row.get('auto_chose', 'torch:fp32')
        assert row['gemm_roof_gops'] == report['gemm_roofs_gops'][ran] > 0
        assert row['share_of_roof'] == row['network_gops'] / row['gemm_roof_gops']


def test_bench_limited_to_avx2_runs_and_decides_as_an_avx2_cpu(tmp_path):
    if 'avx2' not in hardware.probe().cpu.features:
        pytest.skip('this CPU has no AVX2 to limit the kernels to')
    env = {k: v for k, v in os.environ.items() if k not in peaks.ISA_LIMITS['avx2']}
    stdout, report = _bench(tmp_path, '--cpu-isa', 'avx2', '--configs',
                            'torch:fp32:contiguous', 'openvino:bf16', 'auto:auto', env=env)
    assert 'kernels limited to avx2' in report['hardware'] and 'class avx2' in stdout
    rows = {r['config']: r for r in report['results']}
    assert 'no native bf16' in rows['openvino:bf16']['skipped']
    assert rows['auto:auto']['auto_chose'].endswith(':fp32')
