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
What a fleet run does, and the identity that says whether a finished output still fits.

The fields of RunSettings are named as bisenet-segment's arguments, so the
Segmenter is built by the same function in the driver and in every worker.
"""

import dataclasses
from pathlib import Path

from bisenet_ros import __version__
from bisenet_ros.runtime.options import DEFAULT_MAX_PIXELS

# The key of a fleet output's record in its metadata.yaml custom_data.
RECORD_KEY = 'bisenet_ros.fleet'


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """
    The model, its runtime options and the outputs every worker of a run produces.

    ``outputs`` is a sorted tuple of labels, color and overlay; ``copy_inputs``
    whether the input images are copied into the output bags; ``topics`` the
    image topics to segment (None: all of each bag's).
    """

    model: Path = None
    backend: str = 'torch'
    device: str = 'cpu'
    precision: str = None
    input_size: tuple = None
    resize: str = 'stretch'
    threads: int = None
    batch: int = 1
    int8_min_agreement: float = 0.995
    outputs: tuple = ('color', 'labels', 'overlay')
    copy_inputs: bool = True
    alpha: float = 0.5
    topics: tuple = None
    max_image_pixels: int = DEFAULT_MAX_PIXELS

    def identity(self, model_digest, input_size):
        """
        Return what an output bag records of the run that wrote it (a JSON-able dict).

        A rerun skips a bag whose finished output records the same identity:
        same model file (``model_digest``), backend, precision, network input
        size, resize policy, outputs, overlay opacity, topics, image size limit
        and package version. The device is left out: it changes speed, not
        what is asked for.
        """
        return {
            'model_digest': model_digest,
            'backend': self.backend,
            'precision': self.precision or 'as stored',
            'input_size': list(input_size),
            'resize': self.resize,
            'outputs': list(self.outputs),
            'copy_inputs': self.copy_inputs,
            'alpha': self.alpha if 'overlay' in self.outputs else None,
            'topics': list(self.topics) if self.topics else None,
            'max_image_pixels': self.max_image_pixels,
            'version': __version__,
        }
