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
A non-BiSeNet architecture through bisenet_ros: a U-Net, exported as torch.onnx users do.

A development benchmark, not a user command (it is not installed):

    python benchmarks/foreign_model.py [--input-size 512x256] [--repeats 5]

Builds a U-Net (Ronneberger et al., 2015: a contracting path of double 3x3
convolutions and max pooling, an expanding path of transposed convolutions
with skip connections; batch norm added, random weights, seeded), exports its
scores (N, 19, H, W) with torch.onnx and a sidecar YAML, then segments the
same frames (real street frames from $BISENET_ROS_SHARED, else a drawn scene,
resized to the input size) through bisenet_ros on each path this machine runs,
side by side with the model's own reference run (torch eager fp32): ms per
frame end to end and the share of pixels labelled as the reference does. The
probe's line names the CPU the figures hold for.
"""

import argparse
from pathlib import Path
import tempfile
import time

from bisenet_ros.runtime import build_segmenter, hardware
from bisenet_ros.runtime.config import size_argument
from bisenet_ros.tools import samples
from bisenet_ros.tools.bench import sample_frames
import cv2
import numpy as np
import torch
from torch import nn
import yaml

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _double_conv(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True), nn.Conv2d(cout, cout, 3, padding=1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class UNet(nn.Module):
    """A four-level U-Net with ``width`` channels at full resolution."""

    def __init__(self, classes=19, width=16):
        super().__init__()
        widths = [width * 2 ** level for level in range(5)]
        self.down = nn.ModuleList([_double_conv(3, widths[0])] + [
            _double_conv(widths[i], widths[i + 1]) for i in range(4)])
        self.up = nn.ModuleList([nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
                                 for i in reversed(range(4))])
        self.merge = nn.ModuleList([_double_conv(2 * widths[i], widths[i])
                                    for i in reversed(range(4))])
        self.classifier = nn.Conv2d(widths[0], classes, 1)

    def forward(self, x):
        skips = []
        for index, block in enumerate(self.down):
            x = block(x if index == 0 else nn.functional.max_pool2d(x, 2))
            skips.append(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips[:-1])):
            x = merge(torch.cat([up(x), skip], dim=1))
        return self.classifier(x)


def _randomised(model):
    """Give batch norm statistics of a trained network, so scores are not near-ties."""
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            count = module.num_features
            module.running_mean.copy_(torch.randn(count, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(count, generator=generator) + 0.5)
    return model.eval()


def export(folder, size):
    """Write unet.onnx and its sidecar in ``folder``; return (torch model, .onnx path)."""
    torch.manual_seed(0)
    model = _randomised(UNet())
    width, height = size
    path = Path(folder) / 'unet.onnx'
    torch.onnx.export(model, torch.zeros(1, 3, height, width), str(path), dynamo=False,
                      opset_version=17, input_names=['input'], output_names=['scores'],
                      dynamic_axes={'input': {0: 'batch'}, 'scores': {0: 'batch'}})
    path.with_suffix('.yaml').write_text(yaml.safe_dump({
        'input': {'color': 'RGB', 'range': 1, 'mean': list(MEAN), 'std': list(STD)},
        'output': {'kind': 'scores'}, 'classes': 'cityscapes'}))
    return model, path


def reference_labels(model, frames):
    """Return the model's own labels (torch eager fp32) and ms per frame."""
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    labels, began = [], time.perf_counter()
    with torch.inference_mode():
        for rgb in frames:
            x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
            labels.append(model((x - mean) / std).argmax(1)[0].numpy().astype(np.uint8))
    return labels, (time.perf_counter() - began) * 1e3 / len(frames)


def _paths():
    probe = hardware.probe()
    paths = [(b, 'cpu', p) for b, d, p, why in probe.pairs()
             if d == 'cpu' and why is None and b != 'torch' and p in ('fp32', 'bf16')]
    return [*paths, ('auto', 'auto', 'auto')]


def main(argv=None):
    """Print the U-Net's paths side by side; return 0."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--input-size', type=size_argument, default='512x256', metavar='WxH')
    parser.add_argument('--repeats', type=int, default=3, help='passes over the frames')
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(hardware.probe().summary())
    frames = [cv2.resize(f, args.input_size, interpolation=cv2.INTER_AREA)
              for f in sample_frames(samples.street_folder())]
    with tempfile.TemporaryDirectory(prefix='foreign-') as folder:
        model, path = export(folder, args.input_size)
        expected, _ = reference_labels(model, frames)
        rows = {}
        for repeat in range(args.repeats):  # round-robin: a busy moment hits every path
            _, rows.setdefault('torch eager fp32 (reference)', []).append(
                reference_labels(model, frames)[1])
            for backend, device, precision in _paths():
                seg = build_segmenter(path, backend=backend, device=device,
                                      precision=precision, threads=args.threads, batch=1,
                                      cache_dir=Path(folder) / 'cache')
                began = time.perf_counter()
                results = [seg.segment([rgb])[0].labels for rgb in frames]
                ms = (time.perf_counter() - began) * 1e3 / len(frames)
                agree = np.mean([(a == b).mean() for a, b in zip(results, expected)])
                name = f'bisenet_ros {seg.backend.name} {seg.backend.precision or "fp32"}'
                rows.setdefault(name + (' (auto)' if backend == 'auto' else ''), []).append(
                    (ms, agree))
    base = min(rows.pop('torch eager fp32 (reference)'))
    print(f'U-Net, 19 classes, input {args.input_size[0]}x{args.input_size[1]}, '
          f'{len(frames)} frames, best of {args.repeats}')
    print(f'{"path":<40}{"ms/frame":>9}{"speed":>8}{"labels as ref":>15}')
    print(f'{"torch eager fp32 (its reference run)":<40}{base:>9.1f}{1:>7.2f}x{1:>15.2%}')
    for name, runs in rows.items():
        ms, agree = min(runs)
        print(f'{name:<40}{ms:>9.1f}{base / ms:>7.2f}x{agree:>15.2%}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
