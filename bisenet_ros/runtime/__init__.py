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
The ROS-free segmentation engine: configuration, build, Segmenter, backends, export, the probe.

``from bisenet_ros.runtime import build_segmenter, RuntimeConfig``. The Segmenter
(and with it torch) is imported on first use, so ``runtime.config``,
``runtime.options`` and ``runtime.hardware`` stay light enough for launch
files, ``--help`` and the node's parameter table.
"""

from bisenet_ros.runtime.backends import BackendUnavailableError
from bisenet_ros.runtime.config import RuntimeConfig

__all__ = ['BackendUnavailableError', 'build_segmenter', 'RuntimeConfig', 'SegmentationResult',
           'Segmenter']


def __getattr__(name):
    if name in ('Segmenter', 'SegmentationResult'):
        from bisenet_ros.runtime import segmenter
        return getattr(segmenter, name)
    if name == 'build_segmenter':
        from bisenet_ros.runtime.build import build_segmenter
        return build_segmenter
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
