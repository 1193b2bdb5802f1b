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
Sample frames for the demo and the benchmarks.

Real street samples and CamVid frames from the folder ``BISENET_ROS_SHARED``
names (the Makefile sets it to a source checkout's ../shared; an installed
package never guesses a path), else a drawn street scene.
"""

import os
from pathlib import Path

from bisenet_ros.media import inputs
import numpy as np

ENV_SHARED = 'BISENET_ROS_SHARED'


def _shared(*parts):
    """Return the folder ``parts`` below $BISENET_ROS_SHARED if it exists, else None."""
    root = os.environ.get(ENV_SHARED)
    folder = Path(root).joinpath(*parts) if root else None
    return folder if folder is not None and folder.is_dir() else None


def street_folder():
    """Return the folder of real street photos and videos, or None."""
    return _shared('samples', 'street')


def calibration_folder():
    """Return a folder of real driving frames for int8 calibration, or None."""
    return _shared('datasets', 'camvid', 'train')


def read_frames(source, per_video, step=1):
    """
    Return RGB frames from a folder (its images, then each video's) or a video file.

    Of each video, up to ``per_video`` frames are taken, one every ``step``.
    """
    source = Path(source)
    if not source.is_dir():
        return _video_sample(source, per_video, step)
    frames = [inputs.read_rgb(p) for p in inputs.image_files(source)]
    for video in sorted(p for p in source.iterdir() if p.suffix in inputs.VIDEO_SUFFIXES):
        frames.extend(_video_sample(video, per_video, step))
    return frames


def _video_sample(path, count, step):
    frames = []
    for index, rgb in enumerate(inputs.video_frames(path)):
        if len(frames) == count:
            break
        if index % step == 0:
            frames.append(rgb)
    return frames


def generated_scene(count, width=640, height=360):
    """Yield frames of a drawn street: sky, buildings, road, a car driving across."""
    for index in range(count):
        frame = np.zeros((height, width, 3), dtype=np.uint8)
        frame[:height // 3] = (110, 160, 220)
        for x in range(0, width, 90):
            top = height // 6 + (x * 37) % (height // 5)
            frame[top:height // 2, x:x + 80] = (120 + x % 60, 110, 100)
        frame[height // 2:] = (90, 90, 95)
        frame[height * 3 // 4 - 2:height * 3 // 4 + 2, ::40] = (230, 230, 230)
        car_x = (index * 25) % (width - 120)
        frame[height // 2 + 30:height // 2 + 90, car_x:car_x + 120] = (20, 40, 150)
        yield frame
