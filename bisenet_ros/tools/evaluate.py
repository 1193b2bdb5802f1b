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
Evaluate a segmentation model on a labelled split (``bisenet-evaluate``).

Single-scale mIoU from a confusion matrix, a per-class IoU table and pixel
accuracy. The model runs through the runtime's Segmenter, so every backend
and precision (torch, ONNX Runtime, OpenVINO; fp32, bf16, int8, an exported
.onnx) is scored exactly as it would run. Logits are upsampled to the label
size before the argmax, as the reference evaluations do.
"""

import argparse
import json
import sys

from bisenet_ros.checkpoint import CheckpointError
from bisenet_ros.cityscapes import IGNORE_ID
from bisenet_ros.runtime import BackendUnavailableError, Segmenter
from bisenet_ros.runtime.options import BACKENDS, DEVICES, PRECISIONS
from bisenet_ros.tools import inputs
from bisenet_ros.training.datasets import build_dataset, CLASS_PRESETS
from bisenet_ros.training.evaluation import evaluate, segmenter_predictor
from bisenet_ros.training.metrics import format_table, summarize


def parse_classes(text):
    """Return a list of class ids from ``'0,1,2'`` or a preset name ('camvid')."""
    if text is None:
        return None
    if text in CLASS_PRESETS:
        return list(CLASS_PRESETS[text])
    try:
        return [int(v) for v in text.split(',') if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'--classes takes comma-separated ids or one of {sorted(CLASS_PRESETS)}') from None


def parse_args(argv=None):
    """Parse the command line."""
    summary = __doc__.strip().splitlines()[0]
    p = argparse.ArgumentParser(prog='bisenet-evaluate', description=summary)
    p.add_argument('checkpoint', help='any checkpoint load_checkpoint reads, or an .onnx')
    p.add_argument('--data-root', required=True, help='dataset root folder')
    p.add_argument('--dataset', default='camvid', choices=('camvid', 'cityscapes'))
    p.add_argument('--split', default='val')
    p.add_argument('--arch', default=None, help='bisenetv1 or bisenetv2 (checked if given)')
    p.add_argument('--input-size', default=None,
                   help="W,H the network sees (default: the checkpoint's, else 1024,512)")
    p.add_argument('--classes', type=parse_classes, default=None,
                   help="class ids to average over, e.g. 0,1,2 or 'camvid' (default: all)")
    p.add_argument('--backend', choices=BACKENDS, default='torch')
    p.add_argument('--device', choices=DEVICES, default='cpu')
    p.add_argument('--precision', choices=PRECISIONS, default=None)
    p.add_argument('--calibration', default=None,
                   help='folder of real frames to calibrate int8 from a checkpoint')
    p.add_argument('--int8-min-agreement', type=float, default=0.995,
                   help='refuse an int8 model below this held-out agreement with fp32')
    p.add_argument('--threads', type=int, default=None, help='CPU threads')
    p.add_argument('--limit', type=int, default=None, help='only the first N frames')
    p.add_argument('--json', dest='json_path', default=None,
                   help="write the summary as JSON to this file ('-' for stdout)")
    return p.parse_args(argv)


def run_evaluation(predict, dataset, num_classes, class_names=None, classes=None,
                   progress=None):
    """Score ``predict`` on ``dataset``; return the :func:`summarize` dict plus the matrix."""
    cm = evaluate(predict, dataset, num_classes, IGNORE_ID, progress)
    summary = summarize(cm, class_names, classes)
    summary['confusion_matrix'] = cm.tolist()
    summary['frames'] = len(dataset)
    return summary


def main(argv=None):
    """Entry point of ``bisenet-evaluate``."""
    args = parse_args(argv)
    input_size = None
    if args.input_size:
        input_size = tuple(int(v) for v in args.input_size.split(','))
        if len(input_size) != 2:
            raise SystemExit('--input-size takes W,H')
    calibration = ([inputs.read_rgb(p) for p in inputs.image_files(args.calibration)[:16]]
                   if args.calibration else None)
    try:
        segmenter = Segmenter(args.checkpoint, backend=args.backend, device=args.device,
                              precision=args.precision, input_size=input_size,
                              label_resize='logits', threads=args.threads, arch=args.arch,
                              calibration_images=calibration,
                              int8_min_agreement=args.int8_min_agreement)
    except (CheckpointError, BackendUnavailableError, ValueError, FileNotFoundError) as exc:
        print(f'bisenet-evaluate: {exc}', file=sys.stderr)
        return 1
    predict, info = segmenter_predictor(segmenter), segmenter.info
    try:
        dataset = build_dataset(args.dataset, args.data_root, args.split)
    except (FileNotFoundError, ValueError) as exc:
        print(f'bisenet-evaluate: --data-root: {exc}', file=sys.stderr)
        return 1
    if args.limit:
        dataset.pairs = dataset.pairs[:args.limit]
    from tqdm import tqdm
    summary = run_evaluation(predict, dataset, info.num_classes, info.class_names,
                             args.classes,
                             progress=lambda it: tqdm(it, desc='evaluate', file=sys.stderr))
    summary.update(checkpoint=str(args.checkpoint), dataset=args.dataset, split=args.split,
                   input_size=list(segmenter.input_size), backend=segmenter.describe())
    print(format_table(summary))
    if args.json_path == '-':
        json.dump(summary, sys.stdout, indent=1)
        print()
    elif args.json_path:
        with open(args.json_path, 'w') as f:
            json.dump(summary, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
