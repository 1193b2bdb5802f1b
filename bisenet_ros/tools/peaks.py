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
What a network's arithmetic costs and what this CPU can reach, for the benchmark's GOP/s.

A network's work is counted by torch's FLOP counter (a multiply-add is two
operations, for fp32 and int8 alike). The CPU's reachable rate is measured,
not looked up in a table of clocks and port counts that differ per core
generation: a large square GEMM, timed in each runtime and precision the
benchmark runs, is the practical roof its convolutions work under. The GEMM
is an ONNX graph (QuantizeLinear/DequantizeLinear around MatMul for int8) so
ONNX Runtime and OpenVINO run their own int8 kernels, as they do for a
quantised network.

``ISA_LIMITS`` runs torch and OpenVINO on a lower instruction-set class than
the CPU has (oneDNN's dispatcher control), which is how an AVX2-only CPU's
code paths are measured on a newer core; ONNX Runtime's kernels read CPUID
and cannot be limited so.
"""

import time

import numpy as np
import torch

# Environment that makes torch's and OpenVINO's kernels (oneDNN, ATen) use only a class's
# instructions, plus the probe's mask so `auto` decides as on that class.
ISA_LIMITS = {
    'avx2': {'ONEDNN_MAX_CPU_ISA': 'AVX2', 'ATEN_CPU_CAPABILITY': 'avx2',
             'BISENET_ROS_HARDWARE': 'avx2'},
}
GEMM_SIZE = 1024


def network_gflop(model, size, batch=1):
    """Return the GFLOP of one forward pass of ``model`` at ``size`` (W, H) per frame."""
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model.eval()(torch.zeros(batch, 3, size[1], size[0]))
    return counter.get_total_flops() / batch / 1e9


def gemm_file(path, precision, n=GEMM_SIZE):
    """Write an n x n x n MatMul as ONNX: float, or int8 (u8 activations, s8 weights, QDQ)."""
    import onnx
    from onnx import helper, numpy_helper, TensorProto
    rng = np.random.default_rng(0)
    nodes, inits = [], []
    if precision == 'int8':
        inits += [numpy_helper.from_array(rng.integers(-127, 128, (n, n), dtype=np.int8), 'wq'),
                  numpy_helper.from_array(np.array(0.01, np.float32), 'ws'),
                  numpy_helper.from_array(np.array(0, np.int8), 'wz'),
                  numpy_helper.from_array(np.array(0.02, np.float32), 'xs'),
                  numpy_helper.from_array(np.array(128, np.uint8), 'xz')]
        nodes += [helper.make_node('QuantizeLinear', ['x', 'xs', 'xz'], ['xq']),
                  helper.make_node('DequantizeLinear', ['xq', 'xs', 'xz'], ['xd']),
                  helper.make_node('DequantizeLinear', ['wq', 'ws', 'wz'], ['w']),
                  helper.make_node('MatMul', ['xd', 'w'], ['y'])]
    else:
        inits.append(numpy_helper.from_array(rng.standard_normal((n, n), np.float32), 'w'))
        nodes.append(helper.make_node('MatMul', ['x', 'w'], ['y']))
    graph = helper.make_graph(
        nodes, 'gemm', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [n, n])],
        [helper.make_tensor_value_info('y', TensorProto.FLOAT, [n, n])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    model.ir_version = 8  # what every runtime here reads, whatever onnx writes by default
    onnx.save(model, str(path))


def gemm_gops(run, n=GEMM_SIZE, seconds=1.0):
    """Return the best GOP/s of ``run(x)`` on an n x n input over about ``seconds``."""
    x = np.random.default_rng(1).standard_normal((n, n), np.float32)
    run(x)  # first call: kernel selection, weight packing
    best, spent = float('inf'), 0.0
    while spent < seconds:
        t0 = time.perf_counter()
        run(x)
        dt = time.perf_counter() - t0
        best, spent = min(best, dt), spent + dt
    return 2 * n ** 3 / best / 1e9


def measure_roofs(folder, configs, threads):
    """
    Return {(backend, precision): GOP/s, or None where it does not run here} of the GEMM.

    torch's roof is its own matmul (fp32, or bf16 under the probe's native bf16);
    ONNX Runtime and OpenVINO run the ONNX GEMM in their own precision settings.
    """
    from bisenet_ros.runtime import hardware
    probe = hardware.probe()
    roofs = {}
    for backend, precision in sorted(set(configs)):
        roofs[backend, precision] = None
        if probe.refusal(backend, 'cpu', precision):
            continue
        if backend == 'torch':
            dtype = {'fp32': torch.float32, 'bf16': torch.bfloat16}.get(precision)
            if dtype is None:
                continue
            torch.set_num_threads(threads)
            w = torch.randn(GEMM_SIZE, GEMM_SIZE, dtype=dtype)
            roofs[backend, precision] = gemm_gops(
                lambda x, w=w: torch.mm(torch.from_numpy(x).to(w.dtype), w))
            continue
        path = folder / f'gemm-{precision}.onnx'
        if not path.exists():
            gemm_file(path, 'int8' if precision == 'int8' else 'fp32')
        roofs[backend, precision] = gemm_gops(_onnx_runner(backend, path, precision, threads))
    return roofs


def _onnx_runner(backend, path, precision, threads):
    if backend == 'onnxruntime':
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(str(path), options, providers=['CPUExecutionProvider'])
        return lambda x: session.run(None, {'x': x})
    import openvino as ov
    config = {'INFERENCE_NUM_THREADS': threads}
    if precision in ('fp32', 'bf16'):
        config['INFERENCE_PRECISION_HINT'] = 'f32' if precision == 'fp32' else 'bf16'
    compiled = ov.Core().compile_model(str(path), 'CPU', config)
    request = compiled.create_infer_request()
    return lambda x: request.infer({0: x})
