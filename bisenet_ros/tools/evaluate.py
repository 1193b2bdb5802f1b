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
bisenet evaluate: score any model the runtime runs on a labelled split.

    bisenet evaluate --data ../shared/datasets/camvid                  # what auto runs
    bisenet evaluate --model model.pth --backend torch --precision fp32 --data DIR
    bisenet evaluate --model model_int8.onnx --data DIR --json scores.json

Single-scale mIoU (percent) from a confusion matrix, a per-class IoU table and
pixel accuracy. The model runs through the same build and Segmenter as
``bisenet segment``, with the same options and defaults, so the figure is that
of the path that runs (printed first): a checkpoint, an exported or int8
.onnx, or whatever ``auto`` chooses here. ``--label-resize logits`` upsamples
scores before the argmax, as the reference evaluations do.
"""

import argparse
import json
from pathlib import Path
import sys

from bisenet_ros.checkpoint import CheckpointError
from bisenet_ros.cityscapes import IGNORE_ID
from bisenet_ros.media import inputs
from bisenet_ros.runtime import BackendUnavailableError, build_segmenter, RuntimeConfig
from bisenet_ros.tools.arguments import int_within, new_parser, runtime_config
from bisenet_ros.training.datasets import build_dataset, CLASS_PRESETS
from bisenet_ros.training.evaluation import evaluate, segmenter_predictor
from bisenet_ros.training.metrics import format_table, summarize

PROG = 'bisenet evaluate'


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


def build_parser(prog=PROG):
    """Return the argument parser of ``bisenet evaluate``."""
    p = new_parser(prog, __doc__)
    p.add_argument('--data', type=Path, required=True, help='dataset root folder')
    p.add_argument('--dataset', default='camvid', choices=('camvid', 'cityscapes'))
    p.add_argument('--split', default='val')
    p.add_argument('--arch', default=None, help='bisenetv1 or bisenetv2 (checked if given)')
    p.add_argument('--classes', type=parse_classes, default=None,
                   help="class ids to average over, e.g. 0,1,2 or 'camvid' (default: all)")
    p.add_argument('--calibration', type=Path, default=None,
                   help='folder of real frames to calibrate int8 from a checkpoint')
    p.add_argument('--limit', type=int_within(1), default=None, help='only the first N frames')
    p.add_argument('--json', type=Path, metavar='FILE', default=None,
                   help="write the summary as JSON to this file ('-' for stdout)")
    RuntimeConfig.add_arguments(p)
    return p


def run_evaluation(predict, dataset, num_classes, class_names=None, classes=None,
                   progress=None):
    """Score ``predict`` on ``dataset``; return the :func:`summarize` dict plus the matrix."""
    cm = evaluate(predict, dataset, num_classes, IGNORE_ID, progress)
    summary = summarize(cm, class_names, classes)
    summary['confusion_matrix'] = cm.tolist()
    summary['frames'] = len(dataset)
    return summary


def main(argv=None, prog=PROG):
    """Score the model on the split; return the exit status."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    config = runtime_config(parser, args)
    try:
        calibration = ([inputs.read_rgb(p) for p in inputs.image_files(args.calibration)[:16]]
                       if args.calibration else None)
        segmenter = build_segmenter(config=config, arch=args.arch,
                                    calibration_images=calibration)
        dataset = build_dataset(args.dataset, args.data, args.split)
    except (CheckpointError, BackendUnavailableError, ValueError, OSError) as exc:
        print(f'{prog}: {exc}', file=sys.stderr)
        return 1
    choice = segmenter.auto_choice
    print(f'{prog}: {segmenter.model_path.name} on {segmenter.describe()}'
          + (f' (auto: {choice.reason})' if choice else ''))
    if args.limit:
        dataset.pairs = dataset.pairs[:args.limit]
    from tqdm import tqdm
    info = segmenter.info
    summary = run_evaluation(segmenter_predictor(segmenter), dataset, info.num_classes,
                             info.class_names, args.classes,
                             progress=lambda it: tqdm(it, desc='evaluate', file=sys.stderr))
    summary.update(model=str(segmenter.model_path), dataset=args.dataset, split=args.split,
                   input_size=list(segmenter.input_size), backend=segmenter.describe(),
                   runtime=config.identity())
    print(format_table(summary))
    if str(args.json) == '-':
        json.dump(summary, sys.stdout, indent=1)
        print()
    elif args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
