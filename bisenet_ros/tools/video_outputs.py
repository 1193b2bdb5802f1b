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
The video path of ``bisenet segment``: one video in, every requested output out.

Colour and overlay become videos at the input's size and rate
(``<stem>_color.mp4``, ``<stem>_overlay.mp4``); labels and confidence, which a
lossy codec would change, become one PNG per frame with the frame index in
the name (``<stem>_labels/<stem>_000042.png``).
"""

from bisenet_ros import render
from bisenet_ros.media import inputs
from bisenet_ros.runtime.options import DEFAULT_MAX_PIXELS
import cv2
from tqdm import tqdm

# Outputs kept exact: one lossless PNG per frame.
PER_FRAME_PNG = ('labels', 'confidence')


class _VideoWriters:
    """One mp4 writer per video output, opened at the first frame (its size is known then)."""

    def __init__(self, out_dir, stem, fps):
        self.out_dir, self.stem, self.fps = out_dir, stem, fps
        self.writers = {}

    def write(self, name, rgb):
        writer = self.writers.get(name)
        if writer is None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            path = self.out_dir / f'{self.stem}_{name}.mp4'
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), self.fps,
                                     (rgb.shape[1], rgb.shape[0]))
            if not writer.isOpened():
                raise OSError(f'could not write {path}')
            self.writers[name] = writer
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

    def close(self):
        for writer in self.writers.values():
            writer.release()


def segment_video(seg, path, out_dir, which, alpha, stats, max_pixels=DEFAULT_MAX_PIXELS):
    """
    Segment every frame of the video at ``path``; write the outputs in ``which``.

    Returns the number of frames segmented; raises ValueError for a video
    that cannot be read.
    """
    count, fps = inputs.video_properties(path)
    writers = _VideoWriters(out_dir, path.stem, fps)
    written = 0
    try:
        for rgb in tqdm(inputs.video_frames(path, max_pixels), total=count or None, unit='frame',
                        desc=path.name):
            (result,) = seg.segment([rgb])
            stats.add(result.labels)
            products = render.render_outputs(rgb, result.labels, seg.lut, which, alpha,
                                             result.confidence)
            for name, array in products.items():
                if name in PER_FRAME_PNG:
                    frame_png = out_dir / f'{path.stem}_{name}' / f'{path.stem}_{written:06d}.png'
                    inputs.write_rgb(frame_png, array)
                else:
                    writers.write(name, array)
            written += 1
    finally:
        writers.close()
    return written
