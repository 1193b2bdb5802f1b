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
Splitting bags into tasks: one per bag, or several consecutive time ranges of a big one.

A chunk covers ``start <= bag time < stop``; a bag's chunks cover its whole
time span without overlap, so every message belongs to exactly one chunk.
Each chunk becomes one storage file of the output bag, named as ``ros2 bag``
names split files (``<bag>_<index>.mcap``).
"""

import collections
import math

ChunkTask = collections.namedtuple('ChunkTask', 'key bag_path out_dir start stop')
ChunkTask.__doc__ = ('One unit of work: its key (bag index, chunk index), the input bag, the '
                     'bag folder to write and the bag-time range [start, stop) in ns.')


def split_span(start, stop, frames, chunk_frames):
    """
    Return [(start, stop)] ranges splitting a bag's span for about ``chunk_frames`` frames each.

    The span is cut into equal durations, as many as ``frames`` / ``chunk_frames``
    rounded up (at least one), so a bag recorded at a steady rate gives chunks
    of about equal size without reading its index first.
    """
    if chunk_frames < 1:
        raise ValueError(f'chunk_frames must be >= 1, got {chunk_frames}')
    count = max(1, min(math.ceil(frames / chunk_frames), stop - start))
    bounds = [start + (stop - start) * i // count for i in range(count)] + [stop]
    return list(zip(bounds[:-1], bounds[1:]))
