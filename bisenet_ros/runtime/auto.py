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
``auto``: the fastest backend, device and precision that keep the accuracy bar.

A pure function of the capability probe (``Hardware``) and the model file's
facts (``ModelFacts``): no loading, no I/O, so every CPU and GPU class is
tested as a table. It returns candidates, best first, each with its reason;
the Segmenter opens the first that really runs (a TensorRT session that falls
back to CUDA, or an export cache that cannot be written, moves it to the next).

The rule, fastest first, where each holds its bar:

1. a CUDA GPU: ONNX Runtime on the TensorRT provider at fp16 (where ONNX
   Runtime lists it; the session proves it), then torch fp16 on tensor cores
   (compute capability 7.0+), then torch fp32;
2. a CPU with native bf16 (AVX512_BF16, AMX, Arm BF16) and OpenVINO: openvino
   bf16, then torch bf16;
3. the fastest installed fp32 backend: openvino, onnxruntime, then torch.

An int8 .onnx runs only int8, on the backend whose activation scheme it was
made for (u8: onnxruntime, s8: openvino), and only if its measured evidence
passes ``int8_min_agreement``; auto never quantises a checkpoint (that needs
the user's frames). A checkpoint may have such a file beside it
(``<stem>_int8.onnx``, made from that very file: its digest is recorded in
it); when its evidence passes for its backend and it serves the request (its
input size, labels only), it goes first on the CPU, except that an ONNX
Runtime (u8) file goes after openvino bf16 where the CPU has AMX. The order
is measured, per CPU class and side by side, in docs/performance.md
("auto"); the figures live there alone. bf16 and fp16 need no per-model evidence: bf16 keeps
fp32's exponent range, so only rounding changes (~3 significant digits, within
the agreement measured on both reference networks), and fp16 runs under
autocast or TensorRT, which keep softmax and reductions in fp32; BiSeNet's
normalised, batch-normalised activations stay far inside fp16's range.
int8 changes accuracy per model, hence its measured evidence.
"""

from dataclasses import dataclass

from bisenet_ros.runtime.options import ACTIVATIONS, AUTO

_FP32_SPEED_ORDER = ('openvino', 'onnxruntime', 'torch')
_ONNX_BACKENDS = ('openvino', 'onnxruntime')
# The backend each int8 activation scheme is quantised for.
_INT8_BACKEND = {scheme: backend for backend, scheme in ACTIVATIONS.items()}


def int8_backend(activations, backend=AUTO):
    """Return the backend an int8 file with ``activations`` runs on (an explicit one wins)."""
    return backend if backend != AUTO else _INT8_BACKEND.get(activations, 'onnxruntime')


@dataclass(frozen=True)
class ModelFacts:
    """What ``auto`` needs to know of the model file."""

    onnx: bool = False  # an exported .onnx (torch cannot run it)
    precision: str = 'fp32'  # of an .onnx file: fp32 or int8
    int8_activations: str = ''  # u8 or s8 for an int8 file
    int8_refusal: str = ''  # why its evidence does not pass where it would run, '' if it does
    path: str = ''  # the file, for an int8 sibling
    int8_sibling: 'ModelFacts' = None  # a checkpoint's usable int8 file beside it
    # bf16 and fp16 without per-model evidence hold for BiSeNet (see above), not for a
    # foreign network: auto keeps that one at fp32 unless asked for less.
    reduced_precision: bool = True

    @classmethod
    def from_onnx_metadata(cls, metadata, int8_refusal='', path=''):
        """Return the facts of an exported .onnx from its bisenet_ros metadata."""
        return cls(onnx=True, precision=metadata.get('precision', 'fp32'),
                   int8_activations=metadata.get('int8_activations', 'u8'),
                   int8_refusal=int8_refusal or '', path=str(path),
                   reduced_precision=metadata.get('variant') != 'foreign')


@dataclass(frozen=True)
class Choice:
    """One way to run the model, and why ``auto`` ranks it where it does."""

    backend: str
    device: str
    precision: str
    reason: str
    model: str = ''  # another file than the one given (a checkpoint's int8 sibling)

    def __str__(self):
        """Return 'backend device precision (reason)' for the log."""
        return f'{self.backend} {self.device} {self.precision} ({self.reason})'


class NoChoiceError(ValueError):
    """Nothing that runs here satisfies the request; the message says why."""


def refusal(hw, backend, device, precision):
    """
    Return why nothing here runs ``precision`` natively, or None.

    Any of the three may be 'auto'; an explicit precision with an 'auto'
    backend or device passes if some installed backend runs it natively on
    device it would choose (CUDA only where there is a GPU). The reason given is
    the probe's for the first combination (torch before the others, the CPU
    before CUDA), which names the better choice.
    """
    if precision in ('', None, AUTO):
        return None
    backends = [backend] if backend != AUTO else list(hw.backends)
    devices = [device] if device != AUTO else ['cpu', 'cuda'] if hw.cuda else ['cpu']
    reasons = [hw.refusal(b, d, precision) for b in backends for d in devices]
    return None if None in reasons else reasons[0]


def _runs(hw, backend, device, precision):
    return hw.refusal(backend, device, precision) is None


def _gpu_choices(hw, facts, tensorrt):
    gpu = hw.cuda[0]
    named = f'{gpu.name}, sm {gpu.capability[0]}.{gpu.capability[1]}'
    choices = []
    if (tensorrt and facts.precision != 'int8' and facts.reduced_precision
            and 'onnxruntime' in hw.backends):
        choices.append(Choice('onnxruntime', 'cuda', 'fp16',
                              f'CUDA GPU ({named}) with the TensorRT provider: fp16 engine'))
    if not facts.onnx:
        if tuple(gpu.capability) >= (7, 0):
            choices.append(Choice('torch', 'cuda', 'fp16',
                                  f'CUDA GPU ({named}) with tensor cores: torch fp16'))
        choices.append(Choice('torch', 'cuda', 'fp32', f'CUDA GPU ({named})'))
    elif facts.precision == 'fp32' and 'onnxruntime' in hw.backends:
        choices.append(Choice('onnxruntime', 'cuda', 'fp32',
                              f'CUDA GPU ({named}), an .onnx file: the CUDA provider'))
    return choices


def _cpu_choices(hw, facts, backend, precision):
    cpu = f'{hw.cpu.model}, class {hw.cpu.cpu_class}'
    backends = [backend] if backend != AUTO else list(_FP32_SPEED_ORDER)
    if facts.onnx:
        backends = [b for b in backends if b in _ONNX_BACKENDS]
    backends = [b for b in backends if b in hw.backends]
    choices = []
    if (precision == 'bf16' or precision == AUTO and facts.reduced_precision) and \
            hw.cpu.native_bf16:
        # openvino's bf16 is the fastest measured, torch's next (docs/performance.md).
        for name in ('openvino', 'torch'):
            if name in backends and _runs(hw, name, 'cpu', 'bf16'):
                choices.append(Choice(name, 'cpu', 'bf16', f'{cpu}: native bf16'))
    if precision in (AUTO, 'fp32'):
        for name in backends:
            choices.append(Choice(name, 'cpu', 'fp32',
                                  f'{cpu}: the fastest installed fp32 backend'
                                  if backend == AUTO else f'{cpu}: fp32'))
    sibling = facts.int8_sibling
    if sibling is not None and not sibling.int8_refusal and precision in (AUTO, 'int8'):
        wanted = int8_backend(sibling.int8_activations)
        if backend in (AUTO, wanted) and _runs(hw, wanted, 'cpu', 'int8'):
            # Behind openvino bf16 only where AMX makes it the faster (see the rule above).
            behind = ('amx' in hw.cpu.features and wanted == 'onnxruntime' and choices
                      and (choices[0].backend, choices[0].precision) == ('openvino', 'bf16'))
            at = 1 if behind else 0
            choices.insert(at, Choice(wanted, 'cpu', 'int8',
                                      f'{cpu}: the int8 file beside the checkpoint, its '
                                      'evidence passed', model=sibling.path))
    return choices


def _int8_choices(hw, facts, backend):
    if facts.int8_refusal:
        raise NoChoiceError(f'this int8 model does not pass its evidence: {facts.int8_refusal}')
    # An explicit backend still wins; the backend warns about the scheme.
    wanted = int8_backend(facts.int8_activations, backend)
    if not _runs(hw, wanted, 'cpu', 'int8'):
        raise NoChoiceError(f'int8 model: {hw.refusal(wanted, "cpu", "int8")}')
    return [Choice(wanted, 'cpu', 'int8',
                   f'int8 file with {facts.int8_activations} activations, evidence passed')]


def candidates(hw, facts, backend=AUTO, device=AUTO, precision=AUTO, tensorrt=False):
    """
    Return the ways to run the model, best first; raise NoChoiceError when there is none.

    ``backend``, ``device`` and ``precision`` are each 'auto' or an explicit
    choice, which is kept (only the 'auto' ones are chosen). ``tensorrt``:
    ONNX Runtime lists the TensorRT provider (the session proves it works).
    """
    if facts.precision == 'int8' and precision in (AUTO, 'int8'):
        return _int8_choices(hw, facts, backend)
    on_gpu = device == 'cuda' or (device == AUTO and bool(hw.cuda))
    if on_gpu and hw.cuda:
        choices = [c for c in _gpu_choices(hw, facts, tensorrt)
                   if backend in (AUTO, c.backend) and precision in (AUTO, c.precision)]
    elif on_gpu:
        raise NoChoiceError('device cuda requested, but there is no CUDA GPU here')
    else:
        choices = _cpu_choices(hw, facts, backend, precision)
    choices = [c for c in choices if _runs(hw, c.backend, c.device, c.precision)]
    if not choices:
        why = refusal(hw, backend, device, precision)
        if why:
            raise NoChoiceError(why)
        raise NoChoiceError(
            f'no backend here runs backend {backend}, device {device}, precision {precision} '
            f'for this model (installed: {", ".join(hw.backends)})')
    return choices
