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
accuracy. The model is reached only through a ``predict(rgb_uint8) -> labels``
callable, so other inference backends can be scored by passing their own.
"""

import argparse
import json
import sys

from bisenet_ros.cityscapes import IGNORE_ID
from bisenet_ros.training.datasets import build_dataset, CAMVID_TRAIN_IDS
from bisenet_ros.training.evaluation import evaluate, TorchPredictor
from bisenet_ros.training.metrics import format_table, summarize

CLASS_PRESETS = {'camvid': list(CAMVID_TRAIN_IDS)}


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
    p.add_argument('checkpoint', help='any checkpoint load_checkpoint reads')
    p.add_argument('--data-root', required=True, help='dataset root folder')
    p.add_argument('--dataset', default='camvid', choices=('camvid', 'cityscapes'))
    p.add_argument('--split', default='val')
    p.add_argument('--arch', default=None, help='bisenetv1 or bisenetv2 (checked if given)')
    p.add_argument('--input-size', default=None,
                   help="W,H the network sees (default: the checkpoint's, else 1024,512)")
    p.add_argument('--classes', type=parse_classes, default=None,
                   help="class ids to average over, e.g. 0,1,2 or 'camvid' (default: all)")
    p.add_argument('--device', default='cpu')
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    p.add_argument('--limit', type=int, default=None, help='only the first N frames')
    p.add_argument('--json', dest='json_path', default=None,
                   help="write the summary as JSON to this file ('-' for stdout)")
    return p.parse_args(argv)


def torch_predictor(checkpoint, arch=None, input_size=None, device='cpu'):
    """Return ``(predict, info)`` for a checkpoint, the default backend of this tool."""
    from bisenet_ros.checkpoint import load_checkpoint
    model, info = load_checkpoint(checkpoint, arch=arch, device=device)
    size = input_size or info.input_size or (1024, 512)
    return TorchPredictor(model, size, info.mean, info.std, device), info


def run_evaluation(predict, dataset, num_classes, class_names=None, classes=None,
                   progress=None):
    """Score ``predict`` on ``dataset``; return the :func:`summarize` dict plus the matrix."""
    cm = evaluate(predict, dataset, num_classes, IGNORE_ID, progress)
    summary = summarize(cm, class_names, classes)
    summary['confusion_matrix'] = cm.tolist()
    summary['frames'] = len(dataset)
    return summary


def main(argv=None, predict=None):
    """Entry point of ``bisenet-evaluate``; ``predict`` replaces the torch backend if given."""
    args = parse_args(argv)
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    input_size = None
    if args.input_size:
        input_size = tuple(int(v) for v in args.input_size.split(','))
        if len(input_size) != 2:
            raise SystemExit('--input-size takes W,H')
    default_predict, info = torch_predictor(args.checkpoint, args.arch, input_size, args.device)
    predict = predict or default_predict
    dataset = build_dataset(args.dataset, args.data_root, args.split)
    if args.limit:
        dataset.pairs = dataset.pairs[:args.limit]
    from tqdm import tqdm
    summary = run_evaluation(predict, dataset, info.num_classes, info.class_names,
                             args.classes,
                             progress=lambda it: tqdm(it, desc='evaluate', file=sys.stderr))
    summary.update(checkpoint=str(args.checkpoint), dataset=args.dataset, split=args.split,
                   input_size=list(getattr(predict, 'input_size', input_size or ()) or []))
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
