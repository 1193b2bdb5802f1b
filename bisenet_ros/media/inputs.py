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


"""Find and read the inputs the offline tools accept: images, folders, videos, bags."""

import os
from pathlib import Path

from bisenet_ros.image_sizes import claimed_size, EncodedImageError, size_refusal
from bisenet_ros.runtime.options import DEFAULT_MAX_PIXELS
import cv2
import numpy as np

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.ppm')
VIDEO_SUFFIXES = ('.mp4', '.avi', '.mkv', '.mov', '.webm', '.m4v')


def image_files(folder):
    """Return the image files of ``folder`` (not recursive), sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def video_files(folder):
    """Return the video files of ``folder`` (not recursive), sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)


def read_rgb(path, max_pixels=DEFAULT_MAX_PIXELS):
    """
    Return an image file as (H, W, 3) uint8 RGB; raise ValueError if unreadable.

    The size the file's header claims is checked against ``max_pixels`` before
    it is decoded (OpenCV's own limit is fixed per process, at 2^30 pixels).
    """
    data = Path(path).read_bytes()
    try:
        _, width, height = claimed_size(data)
    except EncodedImageError as exc:
        raise ValueError(f'{path}: not a readable image ({exc})') from exc
    refused = size_refusal(width, height, max_pixels)
    if refused:
        raise ValueError(f'{path}: {refused[1]}')
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f'{path}: not a readable image')
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def write_rgb(path, rgb):
    """Write an (H, W, 3) RGB or (H, W) single-channel array as an image file."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    data = rgb if rgb.ndim == 2 else cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), data):
        raise OSError(f'could not write {path}')


def video_frames(path, max_pixels=DEFAULT_MAX_PIXELS):
    """Yield the frames of a video file as RGB arrays; refuse frames above ``max_pixels``."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ValueError(f'{path}: not a readable video')
    # The container's frame size, checked before the first frame is decoded.
    refused = size_refusal(int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)) or 1,
                           int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) or 1, max_pixels)
    if refused:
        capture.release()
        raise ValueError(f'{path}: {refused[1]}')
    try:
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def video_properties(path):
    """Return (frame count, frames per second) of a video file; raise ValueError if unreadable."""
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise ValueError(f'{path}: not a readable video')
        return int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), capture.get(cv2.CAP_PROP_FPS) or 30.0
    finally:
        capture.release()


def check_output(source, output, kind):
    """
    Raise ValueError for an output path that cannot work for ``source`` of ``kind``.

    The output may be neither the input nor inside it (a folder's next run would
    segment the previous outputs), nor under a file; a bag output must be new.
    """
    source, output = Path(source).resolve(), Path(output).resolve()
    if output == source or (source.is_dir() and source in output.parents):
        raise ValueError(f'output {output} is the input or inside it: outputs would be read '
                         'as inputs on the next run; choose another output')
    blocking = next((p for p in (output, *output.parents) if p.exists()), None)
    if blocking is not None and blocking.is_file():
        raise ValueError(f'output {output}: {blocking} is a file, not a folder')
    if kind == 'bag' and output.exists():
        raise ValueError(f'output {output} exists already; a segmented bag needs a new path')


def input_kind(path):
    """Return 'image', 'folder', 'video' or 'bag' for an offline tool's input."""
    path = Path(path)
    if not path.exists():  # before any model loads: a typo costs a second, not a minute
        link = f' (a link to {os.readlink(path)}, which leads to nothing)' if path.is_symlink() \
            else ''
        raise ValueError(f'{path}: no such file or folder{link}')
    if path.is_dir():
        if (path / 'metadata.yaml').exists():
            return 'bag'
        return 'folder'
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return 'image'
    if suffix in VIDEO_SUFFIXES:
        return 'video'
    if suffix in ('.mcap', '.db3'):
        return 'bag'
    raise ValueError(f'{path}: not an image, folder, video ({", ".join(VIDEO_SUFFIXES)}) or '
                     'rosbag2')
