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
The files an engine runs besides the model given: a checkpoint's int8 sibling and export cache.

``auto_facts`` reads what ``auto`` needs of a model file (an .onnx file's own
metadata, or a checkpoint's ``<stem>_int8[_<W>x<H>].onnx``); ``exported_onnx``
returns a checkpoint's verified ONNX export for one input size and output
kind, cached by the checkpoint's digest, quantised to int8 with the caller's
frames when asked.
"""

import hashlib
import logging
import time

from bisenet_ros.checkpoint import load_checkpoint
from bisenet_ros.runtime import auto
from bisenet_ros.runtime.auto import ModelFacts
from bisenet_ros.runtime.backends import BackendUnavailableError
from bisenet_ros.runtime.export import export_verified, file_sha256, read_metadata
from bisenet_ros.runtime.model_check import examine, ModelFileError
from bisenet_ros.runtime.options import ACTIVATIONS, AUTO
from bisenet_ros.runtime.processing import Normaliser, prepare_batch
from bisenet_ros.runtime.quantize import default_weight_bits, int8_shortfall, quantize_int8
import numpy as np

LOG = logging.getLogger('bisenet_ros.runtime')


def auto_facts(model_path, config, arch=None):
    """Return auto's ModelFacts of ``model_path`` (int8 evidence judged where it would run)."""
    if model_path.suffix == '.onnx':
        return _onnx_facts(model_path, config.backend, config.int8_min_agreement)
    return ModelFacts(int8_sibling=int8_sibling(model_path, config, arch))


def _onnx_facts(path, backend, gate, metadata=None):
    metadata = metadata or read_metadata(path)
    runtime = auto.int8_backend(metadata.get('int8_activations', 'u8'), backend)
    return ModelFacts.from_onnx_metadata(
        metadata, int8_shortfall(metadata, gate, runtime=runtime), path)


def int8_sibling(model_path, config, arch=None):
    """
    Return the facts of the checkpoint's int8 file, if one can serve ``config``; else None.

    ``<stem>_int8_<W>x<H>.onnx`` for the input size asked, else ``<stem>_int8.onnx``.
    It must come from this checkpoint (the digest it records, compared before
    anything else it says is believed), pass model_check.examine and serve the
    request: labels only, at the input size asked for (else the checkpoint's
    own), resized to it. A file that fails is skipped with one warning: it
    never stops the checkpoint itself.
    """
    # An int8 file gives labels only, at its fixed size, on an int8 runtime: nothing to
    # read when the request excludes it.
    if (config.confidence or config.label_resize == 'logits' or config.resize == 'native'
            or config.backend == 'torch' or config.precision not in (AUTO, 'int8')):
        return None
    wanted_size = config.input_size
    stem = model_path.stem
    paths = [model_path.with_name(f'{stem}_int8.onnx')]
    if wanted_size is not None:
        paths.insert(0, model_path.with_name(
            f'{stem}_int8_{wanted_size[0]}x{wanted_size[1]}.onnx'))
    path = next((p for p in paths if p.exists()), None)
    if path is None:
        return None
    try:
        metadata = examine(path, config, parent=model_path).metadata
    except ModelFileError as exc:
        LOG.warning('auto: skipping %s beside the checkpoint: %s', path,
                    str(exc).removeprefix(f'{path}: '))
        return None
    if metadata.get('outputs') != 'labels':
        LOG.debug('auto: %s is not a labels file', path)
        return None
    if wanted_size is None:  # the checkpoint's own size: the sibling must not change it
        wanted_size = load_checkpoint(model_path, arch=arch)[1].input_size
    if wanted_size is not None and list(wanted_size) != list(metadata.get('input_size', [])):
        LOG.debug('auto: %s is not made for input %s', path, wanted_size)
        return None
    return _onnx_facts(path, config.backend, config.int8_min_agreement, metadata)


def _frames_digest(images):
    digest = hashlib.sha256()
    for image in images:
        digest.update(repr(image.shape).encode())
        digest.update(np.ascontiguousarray(image).data)
    return digest.hexdigest()[:16]


def exported_onnx(model, info, model_path, input_size, config, precision, backend,
                  calibration_images=None):
    """Return the cached ONNX export of the checkpoint for this size, output and precision."""
    outputs = 'logits' if config.label_resize == 'logits' else (
        'labels+confidence' if config.confidence else 'labels')
    width, height = input_size
    stem = (f'{model_path.stem}-{file_sha256(model_path)[:16]}-{width}x{height}-'
            f'{outputs.replace("+", "_")}')
    fp32_path = config.cache_folder / 'onnx' / f'{stem}-fp32.onnx'
    if not fp32_path.exists():
        LOG.info('exporting %s to %s', model_path, fp32_path)
        started = time.monotonic()
        try:
            fp32_path.parent.mkdir(parents=True, exist_ok=True)
            export_verified(model, info, fp32_path, input_size, outputs)
        except OSError as exc:  # 'auto' then falls back to torch, which needs no export
            raise BackendUnavailableError(
                f'cannot write the ONNX export cache {fp32_path.parent}: {exc}; set '
                'cache_dir to a writable folder, or use backend torch') from exc
        LOG.info('exported %s in %.1f s (cached: later starts skip this)', fp32_path.name,
                 time.monotonic() - started)
    if precision != 'int8':
        return fp32_path
    return quantized_onnx(fp32_path, info, input_size, config, backend, calibration_images)


def quantized_onnx(fp32_path, info, input_size, config, backend, calibration_images):
    """
    Return the cached int8 quantisation of an fp32 .onnx, calibrated on the user's frames.

    One in four frames is held out to measure how many pixels int8 labels as
    fp32 does; that share goes into the file, and the int8 gate judges it.
    """
    if not calibration_images:
        raise ValueError('precision int8 from an fp32 model needs calibration_images (real '
                         'frames; --calibration DIR in the tools), or an int8 .onnx made '
                         'with bisenet export')
    activations = ACTIVATIONS[backend]
    # 7-bit weights follow the probe (no VNNI): the name keeps the two apart.
    bits = default_weight_bits()
    stem = f'{fp32_path.stem.removesuffix("-fp32")}-{file_sha256(fp32_path)[:16]}'
    int8_path = config.cache_folder / 'onnx' / (f'{stem}-int8-{activations}-w{bits}-'
                                                f'{_frames_digest(calibration_images)}.onnx')
    if not int8_path.exists():
        normaliser = Normaliser(info.mean, info.std)
        batches = [prepare_batch([image], normaliser, config.resize, input_size)[0]
                   for image in calibration_images]
        int8_path.parent.mkdir(parents=True, exist_ok=True)
        quantize_int8(fp32_path, int8_path, batches, activations, bits)
    return int8_path
