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
The ``auto`` rule as a pure function, for each CPU and GPU class; then in the Segmenter.

The CPUs are the recorded /proc/cpuinfo of real machines (test/data/cpuinfo);
GPUs and installed backends are stated per case, since the rule must be right
for machines this one is not.
"""

from pathlib import Path

from bisenet_ros.resources import demo_model_path
from bisenet_ros.runtime import auto, BackendUnavailableError, build_segmenter, hardware
from bisenet_ros.runtime.auto import Choice, ModelFacts, NoChoiceError
from helpers import needs
import numpy as np
import pytest

CPUINFO = Path(__file__).resolve().parent / 'data' / 'cpuinfo'
ALL = {'torch': '2.13.0', 'onnxruntime': '1.31.1', 'openvino': '2026.4.1'}
AVX2 = ('amd_epyc_zen3_avx2.txt', 'x86_64')
ZEN4 = ('amd_epyc_zen4_avx512_bf16.txt', 'x86_64')
AMX = ('intel_xeon_sapphire_rapids_amx.txt', 'x86_64')
ALDER = ('intel_core_alder_lake_avx_vnni.txt', 'x86_64')
ORIN = ('jetson_agx_orin_cortex_a78ae.txt', 'aarch64')
GRAVITON3 = ('aws_graviton3_neoverse_v1.txt', 'aarch64')
RPI4 = ('raspberry_pi4_cortex_a72.txt', 'aarch64')
H100 = hardware.CudaDevice(0, 'NVIDIA H100', (9, 0))
PASCAL = hardware.CudaDevice(0, 'Tesla P4', (6, 1))
INT8_U8 = ModelFacts(onnx=True, precision='int8', int8_activations='u8')
INT8_S8 = ModelFacts(onnx=True, precision='int8', int8_activations='s8')
ONNX = ModelFacts(onnx=True)


def _machine(cpu, cuda=(), backends=None):
    name, arch = cpu
    parsed = hardware.parse_cpuinfo((CPUINFO / name).read_text(), arch, 2)
    return hardware.Hardware(cpu=parsed, cuda=tuple(cuda), backends=dict(backends or ALL))


def _first(machine, facts=ModelFacts(), **kwargs):
    choice = auto.candidates(machine, facts, **kwargs)[0]
    return choice.backend, choice.device, choice.precision


# -- CPUs ---------------------------------------------------------------------------------------

@pytest.mark.parametrize('cpu', [ZEN4, AMX, GRAVITON3], ids=['zen4', 'amx', 'graviton3'])
def test_native_bf16_cpus_take_openvino_bf16(cpu):
    machine = _machine(cpu)
    assert machine.cpu.native_bf16
    assert _first(machine) == ('openvino', 'cpu', 'bf16')


@pytest.mark.parametrize('cpu', [ZEN4, AMX, GRAVITON3], ids=['zen4', 'amx', 'graviton3'])
def test_a_foreign_model_stays_at_fp32_unless_asked_for_less(cpu):
    foreign = ModelFacts(onnx=True, reduced_precision=False)
    machine = _machine(cpu)
    found = [(c.backend, c.precision) for c in auto.candidates(machine, foreign)]
    assert found == [('openvino', 'fp32'), ('onnxruntime', 'fp32')]
    assert _first(machine, foreign, precision='bf16') == ('openvino', 'cpu', 'bf16')
    gpu = _machine(cpu, cuda=[H100])
    assert _first(gpu, foreign, tensorrt=True) == ('onnxruntime', 'cuda', 'fp32')
    assert auto.ModelFacts.from_onnx_metadata({'variant': 'foreign'}).reduced_precision is False
    assert auto.ModelFacts.from_onnx_metadata({}).reduced_precision


@pytest.mark.parametrize('cpu', [AVX2, ALDER, RPI4, ORIN], ids=['zen3', 'alder', 'rpi4', 'orin'])
def test_cpus_without_native_bf16_take_the_fastest_fp32_backend(cpu):
    assert _first(_machine(cpu)) == ('openvino', 'cpu', 'fp32')
    assert _first(_machine(cpu, backends={'torch': '2', 'onnxruntime': '1'})) == (
        'onnxruntime', 'cpu', 'fp32')
    assert _first(_machine(cpu, backends={'torch': '2'})) == ('torch', 'cpu', 'fp32')


def test_without_openvino_a_bf16_cpu_takes_torch_bf16_before_fp32_backends():
    machine = _machine(AMX, backends={'torch': '2', 'onnxruntime': '1'})
    found = [(c.backend, c.precision) for c in auto.candidates(machine, ModelFacts())]
    assert found == [('torch', 'bf16'), ('onnxruntime', 'fp32'), ('torch', 'fp32')]


def test_torch_is_always_the_last_resort_for_a_checkpoint():
    # What a failed export (cache not writable) falls back to.
    for cpu in (AVX2, ZEN4, AMX):
        assert auto.candidates(_machine(cpu), ModelFacts())[-1].backend == 'torch'


def test_an_onnx_file_never_goes_to_torch():
    for cpu in (AVX2, AMX):
        backends = {c.backend for c in auto.candidates(_machine(cpu), ONNX)}
        assert backends and 'torch' not in backends
    with pytest.raises(NoChoiceError, match='installed: torch'):
        auto.candidates(_machine(AVX2, backends={'torch': '2'}), ONNX)


# -- int8 files ---------------------------------------------------------------------------------

@pytest.mark.parametrize('facts,backend', [(INT8_U8, 'onnxruntime'), (INT8_S8, 'openvino')])
def test_an_int8_file_runs_on_the_backend_of_its_activation_scheme(facts, backend):
    for cpu in (AVX2, AMX):
        assert _first(_machine(cpu), facts) == (backend, 'cpu', 'int8')


def test_an_int8_file_whose_evidence_fails_is_refused_with_the_reason():
    failing = ModelFacts(onnx=True, precision='int8', int8_activations='u8',
                         int8_refusal='int8 labels 92.70 % of pixels as fp32 did')
    with pytest.raises(NoChoiceError, match='92.70 %'):
        auto.candidates(_machine(AVX2), failing)


def test_an_explicit_backend_still_wins_over_the_scheme():
    assert _first(_machine(AVX2), INT8_U8, backend='openvino') == ('openvino', 'cpu', 'int8')


# -- GPUs ---------------------------------------------------------------------------------------

def test_a_gpu_with_tensorrt_takes_the_tensorrt_fp16_engine_first():
    found = auto.candidates(_machine(AVX2, cuda=[H100]), ModelFacts(), tensorrt=True)
    assert [(c.backend, c.device, c.precision) for c in found] == [
        ('onnxruntime', 'cuda', 'fp16'), ('torch', 'cuda', 'fp16'), ('torch', 'cuda', 'fp32')]
    assert 'TensorRT' in found[0].reason and 'H100' in found[0].reason


def test_a_gpu_without_tensorrt_takes_torch_fp16_on_tensor_cores_else_fp32():
    assert _first(_machine(AVX2, cuda=[H100])) == ('torch', 'cuda', 'fp16')
    assert _first(_machine(AVX2, cuda=[PASCAL])) == ('torch', 'cuda', 'fp32')


def test_an_onnx_file_on_a_gpu_takes_onnxruntime():
    assert _first(_machine(ZEN4, cuda=[H100]), ONNX) == ('onnxruntime', 'cuda', 'fp32')
    assert _first(_machine(ZEN4, cuda=[H100]), ONNX, tensorrt=True) == (
        'onnxruntime', 'cuda', 'fp16')


def test_device_cpu_keeps_a_gpu_machine_on_its_cpu():
    assert _first(_machine(AMX, cuda=[H100]), device='cpu') == ('openvino', 'cpu', 'bf16')


def test_device_cuda_without_a_gpu_is_refused():
    with pytest.raises(NoChoiceError, match='no CUDA GPU'):
        auto.candidates(_machine(AMX), ModelFacts(), device='cuda')


# -- explicit choices narrow auto ---------------------------------------------------------------

def test_explicit_backend_with_auto_precision():
    assert _first(_machine(AMX), backend='torch') == ('torch', 'cpu', 'bf16')
    assert _first(_machine(AVX2), backend='torch') == ('torch', 'cpu', 'fp32')
    assert _first(_machine(AMX), backend='onnxruntime') == ('onnxruntime', 'cpu', 'fp32')


def test_explicit_precision_with_auto_backend():
    assert _first(_machine(AMX), precision='fp32') == ('openvino', 'cpu', 'fp32')
    assert _first(_machine(AMX, backends={'torch': '2'}), precision='bf16') == (
        'torch', 'cpu', 'bf16')
    with pytest.raises(NoChoiceError):
        auto.candidates(_machine(AVX2), ModelFacts(), precision='bf16')


def test_every_candidate_runs_natively_and_says_why():
    for cpu in (AVX2, ZEN4, AMX, ALDER, ORIN, GRAVITON3, RPI4):
        for cuda in ((), (H100,)):
            machine = _machine(cpu, cuda)
            for choice in auto.candidates(machine, ModelFacts(), tensorrt=bool(cuda)):
                assert machine.refusal(choice.backend, choice.device, choice.precision) is None
                assert isinstance(choice, Choice) and choice.reason


SIBLING = ModelFacts(int8_sibling=ModelFacts(
    onnx=True, precision='int8', int8_activations='u8', path='m_int8.onnx'))


@pytest.mark.parametrize('cpu', [AVX2, ZEN4, ALDER, RPI4], ids=['zen3', 'zen4', 'alder', 'rpi4'])
def test_a_checkpoints_passing_int8_sibling_goes_first_without_amx(cpu):
    choice = auto.candidates(_machine(cpu), SIBLING)[0]
    assert (choice.backend, choice.precision) == ('onnxruntime', 'int8')
    assert choice.model == 'm_int8.onnx'


def test_with_amx_an_onnxruntime_sibling_comes_after_openvino_bf16_an_openvino_one_first():
    found = [(c.backend, c.precision) for c in auto.candidates(_machine(AMX), SIBLING)]
    assert found[:3] == [('openvino', 'bf16'), ('onnxruntime', 'int8'), ('torch', 'bf16')]
    s8 = ModelFacts(int8_sibling=ModelFacts(onnx=True, precision='int8',
                                            int8_activations='s8', path='m_int8.onnx'))
    assert _first(_machine(AMX), s8) == ('openvino', 'cpu', 'int8')
    assert _first(_machine(AVX2), s8) == ('openvino', 'cpu', 'int8')


def test_the_int8_sibling_is_left_out_when_it_fails_or_the_request_excludes_it():
    failing = ModelFacts(int8_sibling=ModelFacts(
        onnx=True, precision='int8', int8_activations='u8', int8_refusal='50 vs 52'))
    for facts, kwargs in ((failing, {}), (SIBLING, {'precision': 'fp32'}),
                          (SIBLING, {'backend': 'openvino'}), (SIBLING, {'precision': 'bf16'})):
        found = auto.candidates(_machine(ZEN4), facts, **kwargs)
        assert all(c.precision != 'int8' for c in found)
    assert _first(_machine(ZEN4), SIBLING, precision='int8') == ('onnxruntime', 'cpu', 'int8')
    assert _first(_machine(ZEN4, [H100]), SIBLING) == ('torch', 'cuda', 'fp16')


# -- in the Segmenter, on this machine ----------------------------------------------------------

def test_segmenter_auto_takes_the_rules_first_choice_here(checkpoint, tmp_path):
    segmenter = build_segmenter(checkpoint, backend='auto', device='auto', precision='auto',
                                input_size=(128, 64), cache_dir=tmp_path, threads=1)
    expected = auto.candidates(hardware.probe(), ModelFacts())[0]
    assert segmenter.auto_choice == expected
    assert segmenter.backend.name == expected.backend
    labels = segmenter.segment([np.zeros((48, 80, 3), np.uint8)])[0].labels
    assert labels.shape == (48, 80)


def test_an_export_cache_that_cannot_be_written_falls_back_to_torch(checkpoint, tmp_path):
    needs('onnxruntime')
    blocked = tmp_path / 'blocked'
    blocked.write_text('a file where the cache folder would go')
    segmenter = build_segmenter(checkpoint, backend='auto', precision='fp32', input_size=(128, 64),
                                cache_dir=blocked)
    assert segmenter.auto_choice.backend == 'torch'


def test_explicit_choices_never_go_through_auto(checkpoint, tmp_path):
    segmenter = build_segmenter(checkpoint, backend='torch', precision='fp32',
                                input_size=(128, 64),
                                cache_dir=tmp_path)
    assert segmenter.auto_choice is None


def test_auto_refusal_reaches_the_caller_as_backend_unavailable(checkpoint, tmp_path):
    if hardware.probe().cuda:
        pytest.skip('this machine has a GPU')
    with pytest.raises(BackendUnavailableError, match='no CUDA GPU'):
        build_segmenter(checkpoint, backend='auto', device='cuda', cache_dir=tmp_path)


def test_an_explicit_precision_nothing_runs_natively_gets_the_probes_reason():
    avx2 = _machine(AVX2)
    assert 'no native bf16' in auto.refusal(avx2, 'auto', 'auto', 'bf16')
    assert 'fp16 on a CPU would be emulated' in auto.refusal(avx2, 'auto', 'auto', 'fp16')
    assert auto.refusal(avx2, 'auto', 'auto', 'int8') is None  # onnxruntime runs it
    assert 'not\nint8'.replace('\n', ' ') in auto.refusal(avx2, 'torch', 'cpu', 'int8')
    assert auto.refusal(_machine(AVX2, cuda=[H100]), 'auto', 'auto', 'fp16') is None
    for precision in ('', None, 'auto'):
        assert auto.refusal(avx2, 'auto', 'auto', precision) is None
    with pytest.raises(NoChoiceError, match='no native bf16'):
        auto.candidates(avx2, ModelFacts(), precision='bf16')


def _demo_with_sibling(tmp_path, **changes):
    """Copy the demo checkpoint and its int8 file to ``tmp_path``, with metadata changes."""
    import shutil
    import onnx
    from bisenet_ros.runtime.export import read_metadata, set_metadata
    demo = demo_model_path()
    sibling = demo.with_name(f'{demo.stem}_int8.onnx')
    assert sibling.is_file(), f'{sibling} is missing: the package ships it'
    needs(auto.int8_backend(read_metadata(sibling)['int8_activations']), 'int8')
    shutil.copy(demo, tmp_path / 'demo.safetensors')
    proto = onnx.load(str(sibling))
    set_metadata(proto, dict(read_metadata(sibling), **changes))
    onnx.save(proto, str(tmp_path / 'demo_int8.onnx'))
    return tmp_path / 'demo.safetensors'


def test_segmenter_auto_runs_the_checkpoints_int8_sibling_when_it_serves(tmp_path):
    checkpoint = _demo_with_sibling(tmp_path)
    segmenter = build_segmenter(checkpoint, backend='auto', device='auto', precision='auto',
                                cache_dir=tmp_path / 'cache', threads=1)
    from bisenet_ros.runtime.export import read_metadata
    sibling = ModelFacts.from_onnx_metadata(read_metadata(tmp_path / 'demo_int8.onnx'),
                                            path=tmp_path / 'demo_int8.onnx')
    expected = auto.candidates(hardware.probe(), ModelFacts(int8_sibling=sibling))[0]
    assert segmenter.auto_choice == expected
    if expected.precision == 'int8':
        assert Path(segmenter.info.path) == tmp_path / 'demo_int8.onnx'
        assert segmenter.segment([np.zeros((36, 48, 3), np.uint8)])[0].labels.shape == (36, 48)
    # Requests it cannot serve: another size, confidence, logits; an explicit precision.
    for kwargs in ({'input_size': (256, 128)}, {'confidence': True},
                   {'label_resize': 'logits'}, {'precision': 'fp32'}):
        options = dict({'backend': 'auto', 'device': 'auto', 'precision': 'auto'}, **kwargs)
        other = build_segmenter(checkpoint, cache_dir=tmp_path / 'cache', threads=1, **options)
        assert other.auto_choice.precision != 'int8'
        assert Path(other.info.path) != tmp_path / 'demo_int8.onnx'


@pytest.mark.parametrize('changes', [{'int8_parent_sha256': '0' * 64},
                                     {'int8_parent_sha256': None}],
                         ids=['another-checkpoint', 'no-parent-recorded'])
def test_an_int8_file_not_made_from_this_checkpoint_is_never_its_sibling(tmp_path, changes):
    checkpoint = _demo_with_sibling(tmp_path, **changes)
    segmenter = build_segmenter(checkpoint, backend='auto', device='auto', precision='auto',
                                cache_dir=tmp_path / 'cache', threads=1)
    assert segmenter.auto_choice.precision != 'int8'


def test_an_int8_file_named_for_the_input_size_asked_serves_that_size(tmp_path):
    import shutil
    checkpoint = _demo_with_sibling(tmp_path)
    demo = demo_model_path()
    sized = demo.with_name(f'{demo.stem}_int8_1024x512.onnx')
    assert sized.is_file(), f'{sized} is missing: the package ships it'
    shutil.copy(sized, tmp_path / 'demo_int8_1024x512.onnx')
    chosen = build_segmenter(checkpoint, backend='auto', device='auto', precision='auto',
                             input_size=(1024, 512), cache_dir=tmp_path / 'cache', threads=1)
    if chosen.auto_choice.precision == 'int8':  # where the rule ranks int8 first
        assert Path(chosen.info.path) == tmp_path / 'demo_int8_1024x512.onnx'
    assert chosen.input_size == (1024, 512)
    other = build_segmenter(checkpoint, backend='auto', device='auto', precision='auto',
                            input_size=(640, 320), cache_dir=tmp_path / 'cache', threads=1)
    assert other.auto_choice.precision != 'int8'
