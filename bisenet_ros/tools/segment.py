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
bisenet-segment: segment images, folders, videos and rosbag2 files offline.

    bisenet-segment street.jpg -o out/             # out/street_{labels,color,overlay}.png
    bisenet-segment frames/ -o out/                # the same for every image
    bisenet-segment drive.mp4 -o out/              # out/drive_overlay.mp4
    bisenet-segment bag_dir/ -o out/segmented_bag  # a bag with labels/color/overlay topics

Label PNGs hold Cityscapes trainIds (255 = ignore). Every input frame gives
exactly one output; per-class pixel statistics are printed at the end. An image
or bag frame that cannot be read is skipped and listed at the end, the others
are still done, and the exit status is 1 (also when nothing was found to
segment); 2 for a usage error. The output may not be the input or inside it.
"""

import argparse
import logging
from pathlib import Path
import sys

from bisenet_ros import render
from bisenet_ros.checkpoint import CheckpointError
from bisenet_ros.runtime import BackendUnavailableError, Segmenter
from bisenet_ros.runtime.options import (AUTO, BACKENDS, DEFAULT_MAX_PIXELS, DEVICES,
                                         PRECISIONS, RESIZE_POLICIES)
from bisenet_ros.tools import inputs
import cv2
import numpy as np
from tqdm import tqdm

# Confidence is the node's alone: the offline outputs are label and colour images.
OUTPUTS = render.OUTPUTS[:3]


def add_segmenter_arguments(parser, auto_default=True):
    """
    Add the options every tool uses to build a Segmenter.

    'auto' is offered for backend, device and precision everywhere, and is the
    default unless ``auto_default`` is False (a fleet run, whose bags are
    compared by what ran, defaults to torch on the CPU).
    """
    parser.add_argument('--model', type=Path, help='checkpoint or .onnx (default: demo model)')
    parser.add_argument('--backend', choices=(AUTO, *BACKENDS),
                        default=AUTO if auto_default else 'torch',
                        help='auto: the fastest that keeps the accuracy bar here')
    parser.add_argument('--device', choices=(AUTO, *DEVICES),
                        default=AUTO if auto_default else 'cpu')
    parser.add_argument('--precision', choices=(AUTO, *PRECISIONS),
                        default=AUTO if auto_default else None,
                        help='auto: the fastest that keeps the accuracy bar for the backend')
    parser.add_argument('--input-size', type=int, nargs=2, metavar=('W', 'H'))
    parser.add_argument('--resize', choices=RESIZE_POLICIES, default='stretch')
    parser.add_argument('--threads', type=int, help='CPU threads (torch, ONNX Runtime, OpenCV)')
    parser.add_argument('--batch', type=int, default=1, help='images per forward pass')
    parser.add_argument('--int8-min-agreement', type=float, default=0.995,
                        help='refuse an int8 model that labelled fewer of its held-out '
                             'calibration pixels as fp32 did')


def segmenter_from_args(args, **extra):
    """Build the Segmenter the arguments describe."""
    return Segmenter(args.model, backend=args.backend, device=args.device,
                     precision=args.precision, input_size=args.input_size,
                     resize=args.resize, threads=args.threads, max_batch=args.batch,
                     int8_min_agreement=args.int8_min_agreement, **extra)


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


def _write_image_outputs(seg, rgb, labels, stem, out_dir, which, alpha):
    for name, array in render.render_outputs(rgb, labels, seg.lut, which, alpha).items():
        inputs.write_rgb(out_dir / f'{stem}_{name}.png', array)


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
            _write_image_outputs(seg, rgb, result.labels, path.stem, out_dir, which, alpha)
            done += 1
    return done


def segment_video(seg, path, out_dir, alpha, stats, max_pixels=DEFAULT_MAX_PIXELS):
    """Write <stem>_overlay.mp4 with one overlay frame per input frame; return the count."""
    count, fps = inputs.video_properties(path)
    writer = None
    written = 0
    target = out_dir / f'{path.stem}_overlay.mp4'
    try:
        for rgb in tqdm(inputs.video_frames(path, max_pixels), total=count or None, unit='frame',
                        desc=path.name):
            (result,) = seg.segment([rgb])
            stats.add(result.labels)
            if writer is None:
                out_dir.mkdir(parents=True, exist_ok=True)
                writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*'mp4v'), fps,
                                         (rgb.shape[1], rgb.shape[0]))
            writer.write(cv2.cvtColor(seg.overlay(rgb, result.labels, alpha),
                                      cv2.COLOR_RGB2BGR))
            written += 1
    finally:
        if writer is not None:
            writer.release()
    return written


def main(argv=None):
    """Segment the given input; return the exit status."""
    parser = argparse.ArgumentParser(prog='bisenet-segment', description=__doc__.split('\n')[1])
    parser.add_argument('input', type=Path, help='image, folder of images, video or rosbag2')
    parser.add_argument('-o', '--output', type=Path, required=True)
    parser.add_argument('--outputs', default='labels,color,overlay',
                        help=f'comma-separated subset of {",".join(OUTPUTS)}')
    parser.add_argument('--alpha', type=float, default=0.5, help='overlay opacity, 0..1')
    parser.add_argument('--topics', nargs='*', help='bag image topics (default: all)')
    parser.add_argument('--max-image-pixels', type=int, default=DEFAULT_MAX_PIXELS,
                        help='largest input image accepted, checked from its header before '
                             'decoding (default 8K: %(default)s)')
    add_segmenter_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    which = set(args.outputs.split(','))
    if not which <= set(OUTPUTS):
        parser.error(f'--outputs: unknown {sorted(which - set(OUTPUTS))}; valid: {OUTPUTS}')
    try:
        kind = inputs.input_kind(args.input)
        inputs.check_output(args.input, args.output, kind)
        paths = _image_paths(args.input, kind)
        seg = segmenter_from_args(args)
    except (CheckpointError, BackendUnavailableError, ValueError, OSError) as exc:
        print(f'bisenet-segment: {exc}', file=sys.stderr)
        return 1
    stats = ClassStatistics(seg.class_names)
    failures = []
    try:
        if kind in ('image', 'folder'):
            count = segment_images(seg, paths, args.output, which, args.alpha, stats, failures,
                                   args.max_image_pixels)
        elif kind == 'video':
            count = segment_video(seg, args.input, args.output, args.alpha, stats,
                                  args.max_image_pixels)
        else:
            from bisenet_ros.tools.segment_bag import segment_bag
            count = segment_bag(seg, args.input, args.output, which, args.alpha, stats,
                                args.topics, failures, args.max_image_pixels)
    except (ValueError, OSError, RuntimeError) as exc:  # unreadable input, unwritable output
        print(f'bisenet-segment: {exc}', file=sys.stderr)
        return 2 if getattr(exc, 'usage', False) else 1
    unit = 'frames' if kind in ('video', 'bag') else 'images'
    print(f'segmented {count} {unit} -> {args.output}')
    print('\n'.join(stats.table()))
    for where, reason in failures:
        print(f'bisenet-segment: skipped {where}: {reason}', file=sys.stderr)
    if failures:
        print(f'bisenet-segment: {len(failures)} input(s) could not be segmented (listed above)',
              file=sys.stderr)
    if not count and not failures:
        print(f'bisenet-segment: nothing was segmented in {args.input}', file=sys.stderr)
    return 1 if failures or not count else 0


def _image_paths(path, kind):
    """Return the image files of an image or folder input; refuse a folder without any."""
    if kind == 'image':
        return [path]
    if kind != 'folder':
        return []
    paths = inputs.image_files(path)
    if not paths:
        hint = (' (a rosbag2 folder needs its metadata.yaml)'
                if any(p.suffix in ('.mcap', '.db3') for p in path.iterdir()) else '')
        raise ValueError(f'{path}: no images ({", ".join(inputs.IMAGE_SUFFIXES)}) to '
                         f'segment{hint}')
    return paths


if __name__ == '__main__':
    sys.exit(main())
