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
Segmenter: RGB images of any size in, labels at their own resolution out.

Shared by the ROS node, the offline tools and the benchmarks::

    seg = Segmenter('model.pth', backend='onnxruntime', device='cpu')
    for result in seg.segment([rgb_uint8, ...]):
        result.labels       # (H, W) uint8 trainIds, 255 = ignore
        result.confidence   # (H, W) float32 max softmax probability, or None
        result.timings      # ms per stage of the batch this image went through
"""

from dataclasses import dataclass, field
import hashlib
import logging
from pathlib import Path
import time

from bisenet_ros import render
from bisenet_ros.checkpoint import CheckpointInfo, load_checkpoint
from bisenet_ros.resources import demo_model_path
from bisenet_ros.runtime import auto, hardware
from bisenet_ros.runtime.auto import AUTO, ModelFacts
from bisenet_ros.runtime.backends import BackendUnavailableError, check_choice
from bisenet_ros.runtime.export import export_verified, file_sha256, read_metadata
from bisenet_ros.runtime.options import (BACKENDS, DEVICES, LABEL_RESIZE, PRECISIONS,
                                         RESIZE_POLICIES)
from bisenet_ros.runtime.processing import (check_input_size, DEFAULT_INPUT_SIZE,
                                            labels_at_source, Normaliser, place,
                                            prepare_batch, validate_image)
from bisenet_ros.runtime.quantize import (ACTIVATIONS, default_weight_bits, int8_measurement,
                                          int8_shortfall, QAT_MAX_MIOU_DROP, quantize_int8)
import cv2
import numpy as np
import torch

LOG = logging.getLogger('bisenet_ros.runtime')


@dataclass
class SegmentationResult:
    """Labels (and optionally confidence) of one image at its own resolution."""

    labels: np.ndarray
    confidence: np.ndarray = None
    timings: dict = field(default_factory=dict)


def _file_digest(path):
    return file_sha256(path)[:16]


def _frames_digest(images):
    digest = hashlib.sha256()
    for image in images:
        digest.update(repr(image.shape).encode())
        digest.update(np.ascontiguousarray(image).data)
    return digest.hexdigest()[:16]


class Segmenter:
    """
    The segmentation engine: resize, normalise, run a backend, labels back at source size.

    Arguments: ``model_path`` (.pth/.safetensors checkpoint or exported .onnx;
    None = the shipped demonstration model), ``backend`` ('torch' |
    'onnxruntime' | 'openvino'), ``device`` ('cpu' | 'cuda'), ``input_size`` (W, H),
    ``precision`` ('fp32' | 'fp16' | 'bf16' | 'int8'; None = the model file's
    own, else fp32), ``resize`` ('stretch' | 'letterbox' | 'native'),
    ``label_resize`` ('nearest' | 'logits'), ``confidence`` (compute the max
    softmax probability), ``threads`` (CPU threads for torch, ONNX Runtime and
    OpenCV), ``providers`` (ONNX Runtime order, e.g. ('tensorrt', 'cuda',
    'cpu')), ``calibration_images`` (RGB arrays for int8 from a checkpoint; one
    in four is held out to measure agreement), ``int8_min_agreement`` (refuse an
    int8 model that labels fewer pixels as fp32 did on its held-out frames),
    ``max_batch`` (images per forward pass), ``channels_last`` (torch memory
    layout: NHWC is faster on CPUs with oneDNN and on tensor cores).
    ``Segmenter.from_model`` runs an in-memory network (e.g. during training).
    """

    def __init__(self, model_path=None, backend='torch', device='cpu', input_size=None,
                 precision=None, resize='stretch', label_resize='nearest', confidence=False,
                 threads=None, providers=None, cache_dir=None, calibration_images=None,
                 max_batch=4, arch=None, channels_last=True, int8_min_agreement=0.995):
        """Load the model and create the backend; raise ValueError for unknown choices."""
        self.model_path = self._resolve_model_path(model_path)
        self.auto_choice = None  # the auto.Choice taken, when something was 'auto'
        options = {'resize': resize, 'label_resize': label_resize, 'confidence': confidence,
                   'threads': threads, 'providers': providers, 'cache_dir': cache_dir,
                   'calibration_images': calibration_images, 'max_batch': max_batch,
                   'arch': arch, 'channels_last': channels_last,
                   'int8_min_agreement': int8_min_agreement, 'input_size': input_size}
        automatic = AUTO in (backend, device, precision)
        choices = (self._auto_candidates(backend, device, precision, options)
                   if automatic else [auto.Choice(backend, device, precision, 'as given')])
        given = self.model_path
        for index, choice in enumerate(choices):
            self.model_path = Path(choice.model) if choice.model else given
            try:
                self._open(choice.backend, choice.device, choice.precision, **options)
            except BackendUnavailableError as exc:
                if index + 1 == len(choices):
                    raise
                # e.g. TensorRT listed but not loadable, or an export cache that cannot be
                # written: the next candidate (torch, at worst) needs neither.
                LOG.warning('auto: %s did not open (%s: %s); taking the next candidate',
                            choice, type(exc).__name__, exc)
                continue
            if automatic:
                self.auto_choice = choice
                LOG.info('auto chose %s %s %s: %s', choice.backend, choice.device,
                         choice.precision, choice.reason)
            return

    @staticmethod
    def _onnx_facts(path, backend, gate):
        """Return auto's facts of an .onnx file, its int8 evidence judged where it would run."""
        metadata = read_metadata(path)
        runtime = auto.int8_backend(metadata.get('int8_activations', 'u8'), backend)
        return ModelFacts.from_onnx_metadata(
            metadata, int8_shortfall(metadata, gate, runtime=runtime), path)

    def _int8_sibling(self, backend, gate, options):
        """
        Return the facts of the checkpoint's int8 file, if one can serve; else None.

        ``<stem>_int8_<W>x<H>.onnx`` for the input size asked, else ``<stem>_int8.onnx``.

        It must come from this checkpoint (the digest it records) and serve
        the request: labels only, at the input size asked for (else the
        checkpoint's own), resized to it.
        """
        # An int8 file gives labels only, at its fixed size: nothing to read otherwise.
        if (options['confidence'] or options['label_resize'] == 'logits'
                or options['resize'] == 'native'):
            return None
        wanted_size = options['input_size']
        stem = self.model_path.stem
        paths = [self.model_path.with_name(f'{stem}_int8.onnx')]
        if wanted_size is not None:  # one file per input size: <stem>_int8_<W>x<H>.onnx
            paths.insert(0, self.model_path.with_name(
                f'{stem}_int8_{wanted_size[0]}x{wanted_size[1]}.onnx'))
        path = next((p for p in paths if p.is_file()), None)
        if path is None:
            return None
        metadata = read_metadata(path)
        if (metadata.get('outputs') != 'labels'
                or metadata.get('int8_parent_sha256') != file_sha256(self.model_path)):
            LOG.debug('auto: %s is not a labels file made from %s', path, self.model_path)
            return None
        if wanted_size is None:  # the checkpoint's own size: the sibling must not change it
            wanted_size = load_checkpoint(self.model_path, arch=options['arch'])[1].input_size
        if wanted_size is not None and list(wanted_size) != list(metadata.get('input_size', [])):
            LOG.debug('auto: %s is not made for input %s', path, wanted_size)
            return None
        return self._onnx_facts(path, backend, gate)

    @staticmethod
    def _resolve_model_path(model_path):
        if model_path is None:
            model_path = demo_model_path()
            if model_path is None:
                raise FileNotFoundError('no model_path given and this install has no '
                                        'demonstration model')
            LOG.info('no model given: using the shipped demonstration model %s '
                     '(CamVid-trained, research and personal use only)', model_path)
        return Path(model_path)

    def _auto_candidates(self, backend, device, precision, options):
        """Return auto's candidates for this model file and machine, best first."""
        probe = hardware.probe()
        gate = float(options['int8_min_agreement'])
        if self.model_path.suffix == '.onnx':
            facts = self._onnx_facts(self.model_path, backend, gate)
        else:
            facts = ModelFacts(int8_sibling=self._int8_sibling(backend, gate, options))
        if precision is None:  # the model file's own precision, else fp32
            precision = facts.precision
        tensorrt = False
        if probe.cuda and 'onnxruntime' in probe.backends:
            import onnxruntime
            tensorrt = 'TensorrtExecutionProvider' in onnxruntime.get_available_providers()
        try:
            return auto.candidates(probe, facts, backend, device, precision, tensorrt)
        except auto.NoChoiceError as exc:
            raise BackendUnavailableError(str(exc)) from None

    def _open(self, backend, device, precision, *, resize, label_resize, confidence, threads,
              providers, cache_dir, calibration_images, max_batch, arch, channels_last,
              int8_min_agreement, input_size):
        """Create the backend for one explicit backend, device and precision."""
        self._set_options(backend, device, precision, resize, label_resize, confidence,
                          threads, max_batch, int8_min_agreement, cache_dir)
        if self.model_path.suffix == '.onnx':
            if backend == 'torch':
                raise ValueError(f'{self.model_path} is an ONNX file: use backend onnxruntime '
                                 'or openvino')
            self._open_onnx(backend, self.model_path, device, precision, providers, threads,
                            input_size)
        else:
            model, info = load_checkpoint(self.model_path, arch=arch)
            if backend == 'torch':
                self._run_in_torch(model, info, device, precision, input_size, channels_last)
            else:
                self._take_info(info, input_size)
                onnx_path = self._exported(model, precision, calibration_images, backend)
                self._open_onnx(backend, onnx_path, device, precision, providers, threads,
                                self.input_size)
        self._finish(int8_min_agreement)

    @classmethod
    def from_model(cls, model, info, device='cpu', precision=None, input_size=None,
                   resize='stretch', label_resize='nearest', confidence=False, max_batch=4,
                   channels_last=True):
        """Return a torch Segmenter over an in-memory ``model`` described by ``info``."""
        segmenter = cls.__new__(cls)
        segmenter._set_options('torch', device, precision, resize, label_resize, confidence,
                               None, max_batch, 0.0, None)
        segmenter.model_path = Path(info.path or '<in-memory model>')
        segmenter._run_in_torch(model, info, device, precision, input_size, channels_last)
        segmenter._finish(0.0)
        return segmenter

    def _set_options(self, backend, device, precision, resize, label_resize, confidence,
                     threads, max_batch, int8_min_agreement, cache_dir):
        """Check the choices (before any loading or export) and keep them."""
        check_choice('backend', backend, BACKENDS)
        check_choice('device', device, DEVICES)
        self.device = device
        if precision is not None:
            check_choice('precision', precision, PRECISIONS)
            # Before any export: a precision this machine only emulates is refused now.
            hardware.probe().require(backend, device, precision)
        check_choice('resize policy', resize, RESIZE_POLICIES)
        check_choice('label resize', label_resize, LABEL_RESIZE)
        if int(max_batch) < 1:
            raise ValueError(f'max_batch must be >= 1, got {max_batch}')
        if not 0.0 <= float(int8_min_agreement) <= 1.0:
            raise ValueError(f'int8_min_agreement must be within 0..1, got {int8_min_agreement}')
        self.resize = resize
        self.label_resize = label_resize
        self.confidence = bool(confidence)
        self.max_batch = int(max_batch)
        self.cache_dir = Path(cache_dir or Path.home() / '.cache' / 'bisenet_ros')
        if threads:
            torch.set_num_threads(int(threads))
            cv2.setNumThreads(int(threads))

    def _take_info(self, info, input_size):
        """Keep the model's facts; the input size is the caller's, else the model's own."""
        self.info = info
        self.normaliser = Normaliser(info.mean, info.std)
        self.input_size = check_input_size(input_size or info.input_size or DEFAULT_INPUT_SIZE)

    def _run_in_torch(self, model, info, device, precision, input_size, channels_last):
        from bisenet_ros.runtime.backends.torch_backend import TorchBackend
        self._take_info(info, input_size)
        self.backend = TorchBackend(model, device, precision or 'fp32', channels_last)

    def _open_onnx(self, backend, onnx_path, device, precision, providers, threads,
                   input_size):
        """Create an ONNX-graph backend and take the model's facts from the file."""
        if backend == 'openvino':
            from bisenet_ros.runtime.backends.openvino_backend import OpenVinoBackend
            self.backend = OpenVinoBackend(onnx_path, device, precision, threads)
        else:
            from bisenet_ros.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
            self.backend = OnnxRuntimeBackend(onnx_path, device, precision, providers,
                                              threads, self.max_batch,
                                              self.cache_dir / 'tensorrt')
        self.info = CheckpointInfo.from_metadata(self.backend.metadata, onnx_path, 'onnx')
        self.normaliser = Normaliser(self.info.mean, self.info.std)
        self.input_size = self.backend.fixed_input_size
        if input_size is not None and tuple(input_size) != self.input_size:
            raise ValueError(f'{onnx_path} was exported for input {self.input_size}, not '
                             f'{tuple(input_size)}; export it again for that size')
        if 'logits' not in self.backend.output_names and self.label_resize == 'logits':
            raise ValueError('label_resize logits needs a model that outputs logits; this '
                             'one computes labels in the graph')
        if self.confidence and not self.supports_confidence:
            raise ValueError('confidence requested but this ONNX model outputs labels only')

    def _finish(self, int8_min_agreement):
        """Run the checks that need the backend; build the palette; log what runs."""
        if self.resize == 'native' and self.backend.fixed_input_size:
            raise ValueError('resize policy native needs backend torch: an ONNX model has a '
                             'fixed input size (use stretch or letterbox)')
        if getattr(self.backend, 'precision', None) == 'int8':
            self._check_int8(float(int8_min_agreement))
        self.lut = render.palette_lut(self.info.palette)
        LOG.info('segmenter: %s, %s input %dx%d, resize %s', self.info.arch,
                 self.backend.describe(), *self.input_size, self.resize)

    def _check_int8(self, min_agreement):
        """Refuse an int8 model whose measured label agreement is below ``min_agreement``."""
        meta = self.backend.metadata
        shortfall = int8_shortfall(meta, min_agreement, runtime=self.backend.name)
        if shortfall:
            raise ValueError(f'{self.info.path}: {shortfall}')
        if meta.get('int8_agreement') is None:
            LOG.warning('int8 model without a measured agreement, run unchecked')
        elif meta.get('int8_method') == 'qat' and min_agreement > 0:
            LOG.info('%s (the gate: at most %.1f point below)',
                     int8_measurement(meta, self.backend.name), 100 * QAT_MAX_MIOU_DROP)
        else:
            LOG.info('%s (int8_min_agreement %.2f %%)',
                     int8_measurement(meta, self.backend.name), 100 * min_agreement)

    def _exported(self, model, precision, calibration_images, backend):
        """Return a cached ONNX export of the checkpoint for this size and precision."""
        outputs = 'logits' if self.label_resize == 'logits' else (
            'labels+confidence' if self.confidence else 'labels')
        width, height = self.input_size
        stem = (f'{self.model_path.stem}-{_file_digest(self.model_path)}-{width}x{height}-'
                f'{outputs.replace("+", "_")}')
        fp32_path = self.cache_dir / 'onnx' / f'{stem}-fp32.onnx'
        if not fp32_path.exists():
            LOG.info('exporting %s to %s', self.model_path, fp32_path)
            started = time.monotonic()
            try:
                fp32_path.parent.mkdir(parents=True, exist_ok=True)
                export_verified(model, self.info, fp32_path, self.input_size, outputs)
            except OSError as exc:  # 'auto' then falls back to torch, which needs no export
                raise BackendUnavailableError(
                    f'cannot write the ONNX export cache {fp32_path.parent}: {exc}; set '
                    'cache_dir to a writable folder, or use backend torch') from exc
            LOG.info('exported %s in %.1f s (cached: later starts skip this)', fp32_path.name,
                     time.monotonic() - started)
        if precision != 'int8':
            return fp32_path
        if not calibration_images:
            raise ValueError('precision int8 from a checkpoint needs calibration_images (real '
                             'frames), or an int8 .onnx made with bisenet-export')
        activations = ACTIVATIONS[backend]
        # 7-bit weights follow the probe (no VNNI): the name keeps the two apart.
        bits = default_weight_bits()
        int8_path = self.cache_dir / 'onnx' / (f'{stem}-int8-{activations}-w{bits}-'
                                               f'{_frames_digest(calibration_images)}.onnx')
        if not int8_path.exists():
            batches = [self.preprocess([image])[0] for image in calibration_images]
            quantize_int8(fp32_path, int8_path, batches, activations, bits)
        return int8_path

    @property
    def supports_confidence(self):
        """
        Whether ``segment(..., confidence=True)`` can work with this model.

        A checkpoint computes confidence on demand; an ONNX graph only if it was
        exported with a confidence or logits output.
        """
        names = getattr(self.backend, 'output_names', None)
        return names is None or 'confidence' in names or 'logits' in names

    @property
    def class_names(self):
        """Return the class names, index = label id."""
        return self.info.class_names

    def describe(self):
        """Return what runs, for logs and diagnostics."""
        return self.backend.describe()

    def preprocess(self, images, placements=None):
        """Return (normalised (N, 3, H, W) batch, placements) of same-sized placements."""
        return prepare_batch(images, self.normaliser, self.resize, self.input_size, placements)

    def segment(self, images, confidence=None):
        """
        Segment RGB uint8 images; return one SegmentationResult per image, in order.

        ``images``: a list of (H, W, 3) uint8 arrays of any sizes, one such array,
        or an (N, H, W, 3) array. ``confidence`` overrides the constructor's.
        """
        if isinstance(images, np.ndarray):
            images = [images] if images.ndim == 3 else list(images)
        for index, image in enumerate(images):
            validate_image(image, index)
        want_confidence = self.confidence if confidence is None else bool(confidence)
        if want_confidence and not self.supports_confidence:
            raise ValueError('this model was exported without confidence output')
        results = [None] * len(images)
        placements = [place(image.shape[1], image.shape[0], self.resize, self.input_size)
                      for image in images]
        groups = {}
        for index, placement in enumerate(placements):
            groups.setdefault(placement.network, []).append(index)
        for indices in groups.values():
            for start in range(0, len(indices), self.max_batch):
                chunk = indices[start:start + self.max_batch]
                outs = self._segment_batch([images[i] for i in chunk],
                                           [placements[i] for i in chunk], want_confidence)
                for i, result in zip(chunk, outs):
                    results[i] = result
        return results

    def _segment_batch(self, images, placements, confidence):
        t0 = time.perf_counter()
        batch, _ = self.preprocess(images, placements)
        t1 = time.perf_counter()
        outputs = self.backend.run(batch)
        if 'logits' in outputs and outputs['logits'].device.type == 'cuda':
            torch.cuda.synchronize()
        t2 = time.perf_counter()
        per_image = labels_at_source(outputs, placements, self.label_resize, confidence)
        t3 = time.perf_counter()
        timings = {'pre_ms': (t1 - t0) * 1e3, 'network_ms': (t2 - t1) * 1e3,
                   'post_ms': (t3 - t2) * 1e3, 'batch': len(images)}
        return [SegmentationResult(labels, conf, dict(timings)) for labels, conf in per_image]

    def colorize(self, labels):
        """Return the RGB colour mask of ``labels`` with this model's palette."""
        return render.colorize(labels, self.lut)

    def overlay(self, rgb, labels, alpha=0.5):
        """Return ``rgb`` blended with the colour mask of ``labels``."""
        return render.overlay(rgb, self.colorize(labels), alpha)


__all__ = ['BackendUnavailableError', 'Segmenter', 'SegmentationResult']
