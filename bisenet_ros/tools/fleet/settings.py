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

RunSettings holds the run's RuntimeConfig (the same one ``bisenet segment``
builds) and what the fleet adds: outputs, topics, overlay opacity. The driver
and every worker build their Segmenter from it with ``build_segmenter``.
"""

import dataclasses

from bisenet_ros import __version__
from bisenet_ros.runtime.config import RuntimeConfig
from bisenet_ros.runtime.options import DEFAULT_MAX_PIXELS

# The key of a fleet output's record in its metadata.yaml custom_data.
RECORD_KEY = 'bisenet_ros.fleet'


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """
    The model's runtime configuration and the outputs every worker of a run produces.

    ``outputs`` is a sorted tuple of labels, color, overlay and confidence;
    ``copy_inputs`` whether the input images are copied into the output bags;
    ``topics`` the image topics to segment (None: all of each bag's).
    """

    runtime: RuntimeConfig = RuntimeConfig()
    outputs: tuple = ('color', 'labels', 'overlay')
    copy_inputs: bool = True
    alpha: float = 0.5
    topics: tuple = None
    max_image_pixels: int = DEFAULT_MAX_PIXELS

    def with_runtime(self, **changes):
        """Return a copy whose runtime configuration has ``changes``."""
        return dataclasses.replace(self, runtime=self.runtime.replace(**changes))

    def identity(self, model_digest, input_size):
        """
        Return what an output bag records of the run that wrote it (a JSON-able dict).

        A rerun skips a bag whose finished output records the same identity:
        same model file (``model_digest``), the runtime's identity (backend,
        precision, network input size, resize and label resize), outputs,
        overlay opacity, topics, image size limit and package version.
        """
        return {
            'model_digest': model_digest,
            **self.runtime.identity(),
            'input_size': list(input_size),
            'outputs': list(self.outputs),
            'copy_inputs': self.copy_inputs,
            'alpha': self.alpha if 'overlay' in self.outputs else None,
            'topics': list(self.topics) if self.topics else None,
            'max_image_pixels': self.max_image_pixels,
            'version': __version__,
        }
