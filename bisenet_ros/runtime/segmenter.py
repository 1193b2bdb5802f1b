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

It only segments: ``build_segmenter`` (runtime/build.py) chooses and prepares
the engine and hands it over. Shared by the ROS node, the offline tools and
the benchmarks::

    seg = build_segmenter('model.pth', RuntimeConfig(backend='onnxruntime'))
    for result in seg.segment([rgb_uint8, ...]):
        result.labels       # (H, W) uint8 trainIds, 255 = ignore
        result.confidence   # (H, W) float32 max softmax probability, or None
        result.timings      # ms per stage of the batch this image went through
"""

from dataclasses import dataclass, field
from pathlib import Path
import time

from bisenet_ros import render
from bisenet_ros.runtime.backends import BackendUnavailableError
from bisenet_ros.runtime.config import RuntimeConfig
from bisenet_ros.runtime.options import AUTO
from bisenet_ros.runtime.processing import (DEFAULT_INPUT_SIZE, labels_at_source, Normaliser,
                                            place, prepare_batch, validate_image)
import numpy as np
import torch


@dataclass
class SegmentationResult:
    """Labels (and optionally confidence) of one image at its own resolution."""

    labels: np.ndarray
    confidence: np.ndarray = None
    timings: dict = field(default_factory=dict)


class Segmenter:
    """
    The segmentation engine: resize, normalise, run a backend, labels back at source size.

    ``backend`` runs the network (torch, onnxruntime or openvino backend
    object), ``info`` describes the model (CheckpointInfo), ``input_size`` is
    the network's (W, H), ``config`` the RuntimeConfig it was built with
    (resize, label resize, confidence, batch), ``model_path`` the file that
    runs and ``auto_choice`` the auto.Choice taken, when something was 'auto'.
    """

    def __init__(self, backend, info, input_size, config, model_path, auto_choice=None):
        """Keep the prepared engine; see ``build_segmenter`` for making one."""
        self.backend = backend
        self.info = info
        self.input_size = tuple(input_size)
        self.config = config
        self.model_path = Path(model_path)
        self.auto_choice = auto_choice
        self.resize = config.resize
        self.label_resize = config.label_resize
        self.confidence = config.confidence
        self.max_batch = config.batch
        self.normaliser = Normaliser(info.mean, info.std)
        self.lut = render.palette_lut(info.palette)

    @classmethod
    def from_model(cls, model, info, config=None, channels_last=True):
        """
        Return a torch Segmenter over an in-memory ``model`` (e.g. during training).

        ``config`` 'auto' device and precision mean the CPU and fp32 here: the
        caller knows where its model lives.
        """
        from bisenet_ros.runtime.backends.torch_backend import TorchBackend
        config = (config or RuntimeConfig()).replace(backend='torch')
        device = 'cpu' if config.device == AUTO else config.device
        precision = 'fp32' if config.precision in (None, AUTO) else config.precision
        input_size = config.input_size or info.input_size or DEFAULT_INPUT_SIZE
        return cls(TorchBackend(model, device, precision, channels_last), info, input_size,
                   config, info.path or '<in-memory model>')

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


__all__ = ['BackendUnavailableError', 'SegmentationResult', 'Segmenter']
