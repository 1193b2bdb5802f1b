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
build_segmenter: choose and prepare the engine a RuntimeConfig describes.

Top to bottom: resolve the model file, list the candidates (one when every
choice is explicit, auto's when something is 'auto'), open the first that runs
(load or export the model, quantise it if asked, check its int8 evidence), and
hand a ready Segmenter over::

    seg = build_segmenter('model_final_v2_city.pth', RuntimeConfig(backend='onnxruntime'))
"""

import dataclasses
import logging
from pathlib import Path

from bisenet_ros.checkpoint import CheckpointInfo, load_checkpoint
from bisenet_ros.resources import demo_model_path
from bisenet_ros.runtime import auto, foreign, hardware
from bisenet_ros.runtime.backends import BackendUnavailableError
from bisenet_ros.runtime.config import check_input_size, RuntimeConfig
from bisenet_ros.runtime.engine_files import auto_facts, exported_onnx, quantized_onnx
from bisenet_ros.runtime.export import read_metadata
from bisenet_ros.runtime.model_check import examine, ModelFileError, probe
from bisenet_ros.runtime.options import AUTO
from bisenet_ros.runtime.processing import DEFAULT_INPUT_SIZE
from bisenet_ros.runtime.quantize import int8_measurement, int8_shortfall, QAT_MAX_MIOU_DROP
from bisenet_ros.runtime.segmenter import Segmenter
from bisenet_ros.weights_by_name import resolve_model
import cv2
import torch

LOG = logging.getLogger('bisenet_ros.runtime')


def build_segmenter(model=None, config=None, *, calibration_images=None, providers=None,
                    arch=None, channels_last=True, **fields):
    """
    Return a ready Segmenter for ``model`` run as ``config`` says.

    ``model``: checkpoint or .onnx path (None: ``config.model``, else the
    shipped demonstration model). ``fields`` override RuntimeConfig fields
    (``backend='torch'``). ``calibration_images``: RGB frames for int8 from a
    checkpoint (one in four held out to measure agreement); ``providers``: ONNX
    Runtime's order, e.g. ('tensorrt', 'cuda', 'cpu'); ``arch`` checks the
    checkpoint's architecture; ``channels_last``: torch's NHWC layout.
    Raises ValueError (a wrong choice or file), CheckpointError or
    BackendUnavailableError (nothing asked for runs here) with one-line reasons.
    """
    config = (config or RuntimeConfig()).replace(**fields)
    if model is not None:
        config = config.replace(model=model)
    if config.device == AUTO and AUTO not in (config.backend, config.precision):
        # Backend and precision chosen: only where to run is left, and that is the GPU
        # where the backend can use one.
        cuda = hardware.probe().cuda and config.backend != 'openvino'
        config = config.replace(device='cuda' if cuda else 'cpu')
    # A foreign .onnx or mmdeploy folder runs as an adapted copy carrying our contract.
    model_path = foreign.adapted(_model_path(config.model, config.cache_dir), config)
    opening = _Opening(model_path, config, calibration_images, providers, arch, channels_last)
    if not config.automatic:
        return opening.segmenter(auto.Choice(config.backend, config.device, config.precision,
                                             'as given'))
    choices = _auto_candidates(model_path, config, arch)
    for index, choice in enumerate(choices):
        try:
            segmenter = opening.segmenter(choice)
        except (BackendUnavailableError, ModelFileError) as exc:
            # A file the user named is refused whatever runs it; a sibling is only skipped.
            if index + 1 == len(choices) or (isinstance(exc, ModelFileError)
                                             and not choice.model):
                raise
            # e.g. TensorRT listed but not loadable, a graph this runtime cannot compile,
            # an export cache that cannot be written, an int8 sibling whose probe run
            # disagrees with its metadata: the next candidate (torch, at worst) needs none.
            LOG.warning('auto: %s did not open (%s: %s); taking the next candidate',
                        choice, type(exc).__name__, exc)
            continue
        segmenter.auto_choice = choice
        LOG.info('auto chose %s %s %s: %s', choice.backend, choice.device, choice.precision,
                 choice.reason)
        return segmenter


def _model_path(model, cache_dir):
    """Return the file of ``model``: a path, a published name (downloaded), or the demo."""
    if model is None:
        model = demo_model_path()
        if model is None:
            raise FileNotFoundError('no model given and this install has no demonstration '
                                    'model')
        LOG.info('no model given: using the shipped demonstration model %s '
                 '(CamVid-trained, research and personal use only)', model)
    return resolve_model(model, cache_dir)


def _auto_candidates(model_path, config, arch):
    """Return auto's candidates for this model file and machine, best first."""
    facts = auto_facts(model_path, config, arch)
    precision = facts.precision if config.precision is None else config.precision
    probe = hardware.probe()
    tensorrt = False
    if probe.cuda and 'onnxruntime' in probe.backends:
        import onnxruntime
        tensorrt = 'TensorrtExecutionProvider' in onnxruntime.get_available_providers()
    try:
        return auto.candidates(probe, facts, config.backend, config.device, precision,
                               tensorrt)
    except auto.NoChoiceError as exc:
        raise BackendUnavailableError(str(exc)) from None


class _Opening:
    """What opening one candidate needs besides the candidate itself."""

    def __init__(self, model_path, config, calibration_images, providers, arch,
                 channels_last):
        self.model_path = model_path
        self.config = config
        self.calibration_images = calibration_images
        self.providers = providers
        self.arch = arch
        self.channels_last = channels_last

    def segmenter(self, choice):
        """Return the Segmenter of one explicit backend, device and precision."""
        config = self.config
        backend, device, precision = choice.backend, choice.device, choice.precision
        if precision is not None:
            # Before any export: a precision this machine only emulates is refused now.
            hardware.probe().require(backend, device, precision)
        if config.threads:
            torch.set_num_threads(config.threads)
            cv2.setNumThreads(config.threads)
        path = Path(choice.model) if choice.model else self.model_path
        if path.suffix == '.onnx':
            if backend == 'torch':
                raise ValueError(f'{path} is an ONNX file: use backend onnxruntime or '
                                 'openvino')
            if precision == 'int8' and self.calibration_images:
                path = self._quantized(path, backend)
            return self._finish(self._onnx(backend, path, device, precision), path)
        model, info = load_checkpoint(path, arch=self.arch)
        input_size = check_input_size(config.input_size or info.input_size
                                      or DEFAULT_INPUT_SIZE)
        if backend == 'torch':
            from bisenet_ros.runtime.backends.torch_backend import TorchBackend
            engine = TorchBackend(model, device, precision or 'fp32', self.channels_last)
            return self._finish((engine, info, input_size), path)
        onnx_path = exported_onnx(model, info, path, input_size, config, precision, backend,
                                  self.calibration_images)
        return self._finish(self._onnx(backend, onnx_path, device, precision), path)

    def _quantized(self, path, backend):
        """Return ``path`` if it is int8, else its int8 quantisation on the user's frames."""
        metadata = read_metadata(path)
        if metadata.get('precision', 'fp32') == 'int8':
            return path
        info = CheckpointInfo.from_metadata(metadata, path, 'onnx')
        return quantized_onnx(path, info, tuple(metadata['input_size']), self.config, backend,
                              self.calibration_images)

    def _onnx(self, backend, onnx_path, device, precision):
        """Return (ONNX-graph backend, the model facts it carries, its input size)."""
        config = self.config
        examined = examine(onnx_path, config)  # before any runtime reads or allocates
        if backend == 'openvino':
            from bisenet_ros.runtime.backends.openvino_backend import OpenVinoBackend
            engine = OpenVinoBackend(onnx_path, device, precision, config.threads or None)
        else:
            from bisenet_ros.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
            engine = OnnxRuntimeBackend(onnx_path, device, precision, self.providers,
                                        config.threads or None, config.batch,
                                        config.cache_folder / 'tensorrt')
        probe(engine, examined)
        info = CheckpointInfo.from_metadata(engine.metadata, onnx_path, 'onnx')
        size = engine.fixed_input_size
        asked = config.input_size
        if asked is not None and tuple(asked) != size:
            raise ValueError(f'{onnx_path} was exported for input {size}, not {tuple(asked)}; '
                             'export it again for that size')
        if 'logits' not in engine.output_names and config.label_resize == 'logits':
            raise ValueError(f'{onnx_path} computes labels in the graph: label_resize logits '
                             'needs a model that outputs logits (use nearest)')
        if config.confidence and not ({'confidence', 'logits'} & set(engine.output_names)):
            raise ValueError(f'{onnx_path} outputs labels only: confidence needs a model '
                             'exported with confidence or logits')
        return engine, info, size

    def _finish(self, prepared, path):
        """Run the checks that need the backend and return the Segmenter."""
        engine, info, input_size = prepared
        if self.config.resize == 'native' and engine.fixed_input_size:
            raise ValueError('resize policy native needs backend torch: an ONNX model has a '
                             'fixed input size (use stretch or letterbox)')
        if getattr(engine, 'precision', None) == 'int8':
            _check_int8(engine, info, self.config.int8_min_agreement)
        if self.config.class_table:
            info = _with_class_table(info, self.config.class_table)
        segmenter = Segmenter(engine, info, input_size, self.config, path)
        LOG.info('segmenter: %s, %s input %dx%d, resize %s', info.arch, engine.describe(),
                 *input_size, self.config.resize)
        return segmenter


def _check_int8(engine, info, min_agreement):
    """Refuse an int8 model whose measured evidence is below its bar; log what passed."""
    meta = engine.metadata
    shortfall = int8_shortfall(meta, min_agreement, runtime=engine.name)
    if shortfall:
        raise ValueError(f'{info.path}: {shortfall}')
    if meta.get('int8_agreement') is None:
        LOG.warning('int8 model without a measured agreement, run unchecked')
    elif meta.get('int8_method') == 'qat' and min_agreement > 0:
        LOG.info('%s (the gate: at most %.1f point below)',
                 int8_measurement(meta, engine.name), 100 * QAT_MAX_MIOU_DROP)
    else:
        LOG.info('%s (int8_min_agreement %.2f %%)', int8_measurement(meta, engine.name),
                 100 * min_agreement)


def _with_class_table(info, name):
    """Return ``info`` naming and colouring its classes from the class table ``name``."""
    from bisenet_ros.class_tables import check_mono8, load_class_table
    table = check_mono8(load_class_table(name))
    if len(table.names) != info.num_classes:
        raise ValueError(f'class table {name!r} names {len(table.names)} classes but the model '
                         f'{info.path} has {info.num_classes}')
    return dataclasses.replace(info, class_names=tuple(table.names),
                               palette=tuple(tuple(c) for c in table.palette))
