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
bisenet segment: segment images, folders, videos and rosbag2 files offline.

    bisenet segment street.jpg -o out/             # out/street_{labels,color,overlay}.png
    bisenet segment frames/ -o out/                # the same for every image (and video)
    bisenet segment drive.mp4 -o out/              # out/drive_color.mp4, drive_overlay.mp4,
                                                   # out/drive_labels/drive_000000.png ...
    bisenet segment bag_dir/ -o out/segmented_bag  # a bag with labels/color/overlay topics

Label PNGs hold the model's class ids (255 = ignore); confidence PNGs are mono8
(255 x max class probability). A video gives colour and overlay videos and one
PNG per frame (index in the name) for labels and confidence. Every input frame
gives exactly one output; per-class pixel statistics are printed at the end.
An image, video or bag frame that cannot be read is skipped and listed at the
end, the others are still done, and the exit status is 1 (also when nothing
was found to segment); 2 for a usage error. The output may not be the input or
inside it.
"""

import logging
from pathlib import Path
import sys

from bisenet_ros import render
from bisenet_ros.checkpoint import CheckpointError
from bisenet_ros.media import inputs
from bisenet_ros.runtime import BackendUnavailableError, build_segmenter, RuntimeConfig
from bisenet_ros.runtime.options import DEFAULT_MAX_PIXELS, MAX_IMAGE_PIXELS
from bisenet_ros.tools.arguments import fraction, int_within, new_parser, runtime_config
from bisenet_ros.tools.video_outputs import segment_video
import numpy as np
from tqdm import tqdm

PROG = 'bisenet segment'
OUTPUTS = render.OUTPUTS
DEFAULT_OUTPUTS = 'labels,color,overlay'


def parse_outputs(parser, text):
    """Return the set of outputs a comma-separated ``text`` names; exit 2 on an unknown one."""
    which = {name for name in text.split(',') if name}
    if not which or not which <= set(OUTPUTS):
        parser.error(f'--outputs {text!r}: choose from {",".join(OUTPUTS)}')
    return which


class ClassStatistics:
    """Pixel counts per class over everything segmented."""

    def __init__(self, class_names):
        """Start empty for the given class names."""
        self.names = class_names
        self.counts = np.zeros(256, dtype=np.int64)

    def add(self, labels):
        """Count the pixels of one label image."""
        self.counts += np.bincount(labels.ravel(), minlength=256)

    def table(self):
        """Return the statistics as printable lines."""
        total = max(int(self.counts.sum()), 1)
        lines = [f'{"class":<16}{"pixels":>14}{"share":>9}']
        for index in np.flatnonzero(self.counts):
            name = self.names[index] if index < len(self.names) else f'id {index}'
            lines.append(f'{name:<16}{self.counts[index]:>14}{self.counts[index] / total:>9.2%}')
        return lines


def segment_images(seg, paths, out_dir, which, alpha, stats, failures,
                   max_pixels=DEFAULT_MAX_PIXELS):
    """
    Segment image files in batches; return the number written.

    An image that cannot be read is added to ``failures`` as (path, reason)
    and skipped: the others are still segmented.
    """
    done = 0
    for start in tqdm(range(0, len(paths), seg.max_batch), unit='batch', desc='images'):
        chunk, images = [], []
        for path in paths[start:start + seg.max_batch]:
            try:
                images.append(inputs.read_rgb(path, max_pixels))
                chunk.append(path)
            except ValueError as exc:
                failures.append((path, str(exc).removeprefix(f'{path}: ')))
        for path, rgb, result in zip(chunk, images, seg.segment(images) if images else []):
            stats.add(result.labels)
            for name, array in render.render_outputs(rgb, result.labels, seg.lut, which, alpha,
                                                     result.confidence).items():
                inputs.write_rgb(out_dir / f'{path.stem}_{name}.png', array)
            done += 1
    return done


def build_parser(prog=PROG):
    """Return the argument parser of ``bisenet segment``."""
    parser = new_parser(prog, __doc__)
    parser.add_argument('input', type=Path, help='image, folder of images and videos, video '
                                                 'or rosbag2')
    parser.add_argument('-o', '--output', type=Path, required=True, help='output folder (a new '
                                                                         'bag for a bag)')
    parser.add_argument('--outputs', default=DEFAULT_OUTPUTS,
                        help=f'comma-separated subset of {",".join(OUTPUTS)}')
    parser.add_argument('--alpha', type=fraction, default=0.5, help='overlay opacity, 0..1')
    parser.add_argument('--topics', nargs='+', help='bag image topics (default: all)')
    parser.add_argument('--max-image-pixels', type=int_within(1, MAX_IMAGE_PIXELS),
                        default=DEFAULT_MAX_PIXELS,
                        help='largest input image accepted, checked from its header before '
                             'decoding (8K)')
    RuntimeConfig.add_arguments(parser)
    return parser


def main(argv=None, prog=PROG):
    """Segment the given input; return the exit status."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    which = parse_outputs(parser, args.outputs)
    config = runtime_config(parser, args, confidence='confidence' in which)
    try:
        kind = inputs.input_kind(args.input)
        inputs.check_output(args.input, args.output, kind)
        paths, videos = _folder_contents(args.input, kind)
        seg = build_segmenter(config=config)
    except (CheckpointError, BackendUnavailableError, ValueError, OSError) as exc:
        print(f'{prog}: {exc}', file=sys.stderr)
        return 1
    stats = ClassStatistics(seg.class_names)
    failures = []
    count = 0
    try:
        if kind == 'bag':
            from bisenet_ros.tools.segment_bag import segment_bag
            count = segment_bag(seg, args.input, args.output, which, args.alpha, stats,
                                args.topics, failures, args.max_image_pixels)
        else:
            count = segment_images(seg, paths, args.output, which, args.alpha, stats,
                                   failures, args.max_image_pixels)
        for video in videos:
            try:
                count += segment_video(seg, video, args.output, which, args.alpha, stats,
                                       args.max_image_pixels)
            except ValueError as exc:  # an unreadable video: listed, the others still done
                failures.append((video, str(exc).removeprefix(f'{video}: ')))
    except (ValueError, OSError, RuntimeError) as exc:  # unreadable input, unwritable output
        print(f'{prog}: {exc}', file=sys.stderr)
        return 2 if getattr(exc, 'usage', False) else 1
    unit = 'frames' if kind in ('video', 'bag') else 'images'
    print(f'segmented {count} {unit} -> {args.output}')
    print('\n'.join(stats.table()))
    for where, reason in failures:
        print(f'{prog}: skipped {where}: {reason}', file=sys.stderr)
    if failures:
        print(f'{prog}: {len(failures)} input(s) could not be segmented (listed above)',
              file=sys.stderr)
    if not count and not failures:
        print(f'{prog}: nothing was segmented in {args.input}', file=sys.stderr)
    return 1 if failures or not count else 0


def _folder_contents(path, kind):
    """
    Return (image files, video files) to segment for an input of ``kind``.

    A folder gives its images and its videos; a folder with neither is refused.
    """
    if kind in ('image', 'video'):
        return ([path], []) if kind == 'image' else ([], [path])
    if kind != 'folder':
        return [], []
    images, videos = inputs.image_files(path), inputs.video_files(path)
    if not images and not videos:
        hint = (' (a rosbag2 folder needs its metadata.yaml)'
                if any(p.suffix in ('.mcap', '.db3') for p in path.iterdir()) else '')
        raise ValueError(f'{path}: no images ({", ".join(inputs.IMAGE_SUFFIXES)}) or videos '
                         f'({", ".join(inputs.VIDEO_SUFFIXES)}) to segment{hint}')
    return images, videos


if __name__ == '__main__':
    sys.exit(main())
