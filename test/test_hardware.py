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


"""The capability probe: the real machine, recorded CPUs of each class, the override."""

import os
from pathlib import Path
import platform
import re

from bisenet_ros.runtime import BackendUnavailableError, hardware
from bisenet_ros.tools import info
import pytest
import torch

CPUINFO = Path(__file__).resolve().parent / 'data' / 'cpuinfo'


def _recorded(name, arch='x86_64', board=''):
    return hardware.parse_cpuinfo((CPUINFO / name).read_text(), arch, 4, board)


@pytest.fixture
def override(monkeypatch):
    """Return a function that sets BISENET_ROS_HARDWARE for this test only."""
    def set_override(value):
        monkeypatch.setenv(hardware.ENV_OVERRIDE, value)
        return hardware.probe()
    monkeypatch.delenv(hardware.ENV_OVERRIDE, raising=False)
    return set_override


# -- the real machine ------------------------------------------------------------------

def test_probe_of_this_machine_matches_what_the_kernel_and_torch_say(override):
    found = override('')
    cpu = found.cpu
    assert cpu.arch == platform.machine().lower()
    assert cpu.cores == len(os.sched_getaffinity(0))
    assert cpu.model and '\n' not in cpu.model
    if cpu.arch == 'x86_64':
        flags = set()
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('flags'):
                flags = set(line.split(':', 1)[1].split())
                break
        assert ('avx2' in cpu.features) == ('avx2' in flags)
        assert ('avx512' in cpu.features) == ('avx512f' in flags)
        assert cpu.native_bf16 == bool({'avx512_bf16', 'amx_bf16'} & flags)
        # torch's own dispatch level must not claim more than the probe found.
        capability = torch.backends.cpu.get_cpu_capability()
        if capability.startswith('AVX512'):
            assert 'avx512' in cpu.features
        if capability == 'AVX2':
            assert 'avx2' in cpu.features
    assert found.backends['torch'] == torch.__version__.split('+')[0]
    assert bool(found.cuda) == torch.cuda.is_available()
    assert 'torch:cpu:fp32' in found.native_pairs()
    assert found.summary().startswith(cpu.model) and f'class {cpu.cpu_class}' in found.summary()


def test_the_probe_is_read_once_per_override(override):
    assert override('') is hardware.probe()
    assert override('avx2') is not override('')


def test_bisenet_info_prints_the_probe_and_every_pair(override, monkeypatch, capsys):
    override('')
    assert info.main([]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == hardware.probe().summary()
    assert 'torch:cpu:fp32' in out and 'runs' in out
    override('avx2')
    assert info.main(['--json', '-']) == 0
    text = capsys.readouterr().out
    assert '"native_bf16": false' in text and 'no native bf16' in text
    monkeypatch.setenv(hardware.ENV_OVERRIDE, 'avx3')
    assert info.main([]) == 2
    assert "unknown item 'avx3'" in capsys.readouterr().err


# -- recorded /proc/cpuinfo of each class -----------------------------------------------

@pytest.mark.parametrize('name, arch, board, model, cpu_class, features', [
    ('amd_epyc_zen3_avx2.txt', 'x86_64', '', 'AMD EPYC 7B13', 'avx2', {'avx2', 'fma'}),
    ('amd_epyc_zen4_avx512_bf16.txt', 'x86_64', '', 'AMD EPYC', 'avx512_bf16',
     {'avx2', 'fma', 'avx512', 'avx512_vnni', 'bf16'}),
    ('intel_xeon_sapphire_rapids_amx.txt', 'x86_64', '',
     'Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz', 'amx',
     {'avx2', 'fma', 'avx512', 'avx512_vnni', 'avx_vnni', 'amx', 'bf16'}),
    ('intel_core_alder_lake_avx_vnni.txt', 'x86_64', '', '12th Gen Intel(R) Core(TM) i7-12700H',
     'avx_vnni', {'avx2', 'fma', 'avx_vnni'}),
    ('raspberry_pi4_cortex_a72.txt', 'aarch64', '', 'Raspberry Pi 4 Model B Rev 1.4',
     'aarch64', {'neon'}),
    ('jetson_agx_orin_cortex_a78ae.txt', 'aarch64', 'NVIDIA Jetson AGX Orin Developer Kit',
     'NVIDIA Jetson AGX Orin Developer Kit', 'aarch64+dotprod', {'neon', 'dotprod'}),
    ('jetson_agx_orin_cortex_a78ae.txt', 'aarch64', '', 'Cortex-A78AE', 'aarch64+dotprod',
     {'neon', 'dotprod'}),
    ('aws_graviton3_neoverse_v1.txt', 'aarch64', '', 'Neoverse-V1', 'aarch64+dotprod+i8mm+bf16',
     {'neon', 'dotprod', 'i8mm', 'bf16', 'sve'}),
])
def test_recorded_cpus_of_each_class(name, arch, board, model, cpu_class, features):
    cpu = _recorded(name, arch, board)
    assert (cpu.model, cpu.cpu_class, set(cpu.features)) == (model, cpu_class, features)
    found = hardware.Hardware(cpu, backends={'torch': '2', 'openvino': '1'})
    native = found.native_pairs()
    assert ('torch:cpu:bf16' in native) == ('openvino:cpu:bf16' in native) == ('bf16' in features)
    assert 'torch:cpu:fp32' in native and 'openvino:cpu:int8' in native
    assert found.summary().startswith(f'{model} ({arch}, 4 cores, class {cpu_class}')


@pytest.mark.parametrize('text', ['', 'garbage\x00\n:::\nflags\n', 'processor : 0\n'])
def test_unreadable_or_odd_cpuinfo_gives_a_cpu_without_features(text):
    for arch in ('x86_64', 'aarch64', 'riscv64'):
        cpu = hardware.parse_cpuinfo(text, arch)
        assert cpu.features == frozenset() and cpu.model and cpu.cores == 1
        assert cpu.cpu_class in ('generic', 'aarch64')


def test_refusals_name_the_reason_and_the_better_choice():
    zen3 = hardware.Hardware(_recorded('amd_epyc_zen3_avx2.txt'),
                             backends={'torch': '2', 'onnxruntime': '1'})
    bf16 = zen3.refusal('torch', 'cpu', 'bf16')
    assert 'AMD EPYC 7B13, class avx2' in bf16 and 'emulated' in bf16 and 'use fp32' in bf16
    for backend in ('torch', 'onnxruntime'):
        assert 'fp16 on a CPU would be emulated' in zen3.refusal(backend, 'cpu', 'fp16')
    assert 'pip install' in zen3.refusal('openvino', 'cpu', 'fp32')
    assert 'use backend onnxruntime' in zen3.refusal('torch', 'cpu', 'int8')
    assert 'no CUDA GPU' in zen3.refusal('torch', 'cuda', 'fp32')
    # ONNX Runtime judges its GPU providers itself and falls back with a log.
    assert zen3.refusal('onnxruntime', 'cuda', 'fp32') is None
    turing = hardware.Hardware(zen3.cpu, (hardware.CudaDevice(0, 'Tesla T4', (7, 5)),),
                               zen3.backends)
    assert turing.refusal('torch', 'cuda', 'fp16') is None
    assert 'Tesla T4 (compute capability 7.5) has no native bf16' in turing.refusal(
        'torch', 'cuda', 'bf16')
    ampere = hardware.Hardware(zen3.cpu, (hardware.CudaDevice(0, 'A100', (8, 0)),), zen3.backends)
    assert ampere.refusal('torch', 'cuda', 'bf16') is None
    assert 'torch:cuda:bf16' in ampere.native_pairs()
    with pytest.raises(BackendUnavailableError, match='emulated'):
        zen3.require('torch', 'cpu', 'bf16')


# -- the override -------------------------------------------------------------------------

@pytest.mark.parametrize('value, features', [
    ('avx2', {'avx2', 'fma'}),
    ('generic', set()),
    ('avx512_vnni', {'avx2', 'fma', 'avx512', 'avx512_vnni'}),
    ('-bf16', {'avx2', 'fma', 'avx512', 'avx512_vnni', 'avx_vnni', 'amx'}),
    (' amx , -amx ', {'avx2', 'fma', 'avx512', 'avx512_vnni', 'bf16'}),
    ('avx2,-fma', {'avx2'}),
])
def test_the_override_only_takes_features_away(value, features):
    amx = _recorded('intel_xeon_sapphire_rapids_amx.txt')
    masked, _ = hardware.apply_override(amx, (), value)
    assert set(masked.features) == features
    zen3 = _recorded('amd_epyc_zen3_avx2.txt')
    masked, _ = hardware.apply_override(zen3, (), value)
    assert set(masked.features) <= {'avx2', 'fma'}  # never claims what the CPU lacks


def test_the_override_hides_gpus_and_rejects_unknown_items():
    gpus = (hardware.CudaDevice(0, 'A100', (8, 0)),)
    cpu = _recorded('amd_epyc_zen3_avx2.txt')
    assert hardware.apply_override(cpu, gpus, '-cuda')[1] == ()
    assert hardware.apply_override(cpu, gpus, '')[1] == gpus
    for bad in ('avx3', '+bf16', 'bf16', '-sse'):
        with pytest.raises(ValueError, match=re.escape(f"unknown item '{bad}'")):
            hardware.apply_override(cpu, gpus, bad)


def test_the_override_simulates_the_avx2_class_on_this_machine(override):
    found = override('avx2,-cuda')
    # Everything above AVX2 is masked, whatever this machine has (an Arm CPU keeps none).
    assert not {'avx512', 'avx512_vnni', 'avx_vnni', 'amx', 'bf16'} & found.cpu.features
    assert set(found.cpu.features) <= hardware.CLASSES['avx2'] and not found.cpu.native_bf16
    assert not found.cuda and 'BISENET_ROS_HARDWARE=avx2,-cuda' in found.summary()
    assert 'torch:cpu:bf16' not in found.native_pairs()
    assert 'openvino:cpu:bf16' not in found.native_pairs()
