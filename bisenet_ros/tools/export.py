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
bisenet export: checkpoint (.pth/.safetensors) -> verified ONNX (and int8, TensorRT).

    bisenet export --model model.pth -o model.onnx --input-size 1024x512
    bisenet export --model model.pth -o model_int8.onnx --precision int8 \
        --calibration frames/ [--int8-for openvino] [--int8-min-agreement 0.995]
    bisenet export --model model.pth -o model.onnx --tensorrt   # engine cache, on a GPU
    bisenet export --check model_int8.onnx --data camvid/ [--parent fp32.onnx] [--write]

Success is declared only after the exported graph has been compared with the
torch network (logits within 1e-3 relative, argmax agreement reported); an
int8 file only if it labels enough held-out calibration pixels as fp32 does.
Weights take 7 bits where this CPU lacks VNNI/dotprod (``--weight-bits``).

``--check`` re-measures an int8 file's evidence here, in each runtime, on a
labelled split: a QAT file's val mIoU (its parent's figures are re-measured
with ``--parent``, else kept), a post-training file's agreement with
``--parent``; ``--write`` stores the new figures and this CPU's class.
"""

import json
import logging
from pathlib import Path
import sys
import tempfile

from bisenet_ros.checkpoint import CheckpointError, load_checkpoint
from bisenet_ros.media.inputs import image_files, read_rgb
from bisenet_ros.resources import demo_model_path
from bisenet_ros.runtime import BackendUnavailableError, hardware
from bisenet_ros.runtime.config import check_input_size, RuntimeConfig, size_argument
from bisenet_ros.runtime.export import (export_verified, ExportVerificationError, OUTPUT_KINDS,
                                        read_metadata)
from bisenet_ros.runtime.model_check import examine
from bisenet_ros.runtime.processing import (DEFAULT_INPUT_SIZE, Normaliser,
                                            prepare_batch)
from bisenet_ros.runtime.quantize import ACTIVATIONS, int8_shortfall, quantize_int8
from bisenet_ros.tools.arguments import fraction, int_within, new_parser
import numpy as np


PROG = 'bisenet export'


def _parser(prog):
    parser = new_parser(prog, __doc__)
    parser.add_argument('--model', type=Path, metavar='PATH',
                        help='the checkpoint to export (default: the shipped demonstration '
                             'model)')
    parser.add_argument('-o', '--output', type=Path, help='the .onnx to write')
    parser.add_argument('--input-size', type=size_argument, metavar='WxH',
                        help="network input (default: the checkpoint's, else 1024x512)")
    parser.add_argument('--outputs', choices=OUTPUT_KINDS, default='labels',
                        help='graph outputs: logits, or argmax (uint8) inside the graph')
    parser.add_argument('--precision', choices=('fp32', 'int8'), default='fp32')
    parser.add_argument('--calibration', type=Path,
                        help='folder of real frames (int8 calibration and verification)')
    parser.add_argument('--calibration-count', type=int_within(1), default=16,
                        help='frames read; one in four is held out to measure agreement')
    parser.add_argument('--int8-for', choices=tuple(ACTIVATIONS), default='onnxruntime',
                        help='backend the int8 file is quantised for')
    parser.add_argument('--int8-min-agreement', type=fraction,
                        default=RuntimeConfig.int8_min_agreement,
                        help='fail unless int8 labels at least this share of held-out '
                             'pixels as fp32 does')
    parser.add_argument('--tensorrt', action='store_true',
                        help='also build the TensorRT engine cache (needs a GPU)')
    parser.add_argument('--fp16', action='store_true', help='TensorRT engine in fp16')
    parser.add_argument('--weight-bits', choices=('auto', '7', '8'), default='auto',
                        help='int8 weight bits; auto: 7 where the CPU lacks VNNI/dotprod')
    parser.add_argument('--check', type=Path, metavar='INT8_ONNX',
                        help='re-measure this int8 file here (needs --data)')
    parser.add_argument('--data', type=Path, help='--check: labelled data root')
    parser.add_argument('--dataset', choices=('camvid', 'cityscapes'), default='camvid')
    parser.add_argument('--split', default='val', help='--check: a split not trained on')
    parser.add_argument('--parent', type=Path, help='--check: the fp32 .onnx it came from')
    parser.add_argument('--write', action='store_true', help='--check: store the figures')
    return parser


def _frames(folder, count, input_size, info):
    """Return normalised (1, 3, H, W) arrays of up to ``count`` images of ``folder``."""
    normaliser = Normaliser(info.mean, info.std)
    batches = [prepare_batch([read_rgb(path)], normaliser, 'stretch', input_size)[0]
               for path in image_files(folder)[:count]]
    if not batches:
        raise SystemExit(f'{PROG}: no images in {folder}')
    return batches


def main(argv=None, prog=PROG):
    """Export, verify, optionally quantise and build a TensorRT engine."""
    args = _parser(prog).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    if args.check:
        return _check(args)
    if not args.output:
        print(f'{PROG}: -o OUTPUT is needed (or --check FILE)', file=sys.stderr)
        return 2
    try:
        model, info = load_checkpoint(args.model or demo_model_path())
    except CheckpointError as exc:
        print(f'{PROG}: {exc}', file=sys.stderr)
        return 1
    try:
        size = check_input_size(args.input_size or info.input_size or DEFAULT_INPUT_SIZE)
    except ValueError as exc:
        print(f'{PROG}: {exc}', file=sys.stderr)
        return 2
    if args.precision == 'int8' and not args.calibration:
        print(f'{PROG}: int8 needs --calibration with real frames', file=sys.stderr)
        return 2
    frames = (_frames(args.calibration, args.calibration_count, size, info)
              if args.calibration else None)
    probe = (np.concatenate(frames[:4]) if frames else np.random.default_rng(0)
             .standard_normal((2, 3, size[1], size[0]), dtype=np.float32))
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = args.output if args.precision == 'fp32' else Path(tmp) / 'fp32.onnx'
        try:
            figures = export_verified(model, info, fp32, size, args.outputs, probe)
            if args.precision == 'int8':
                bits = None if args.weight_bits == 'auto' else int(args.weight_bits)
                agreement = quantize_int8(fp32, args.output, frames,
                                          ACTIVATIONS[args.int8_for], bits)
                meta = read_metadata(args.output)
                figures['int8'] = {'argmax_agreement_vs_fp32': agreement,
                                   'held_out_frames': meta['int8_check_frames']}
                shortfall = int8_shortfall(meta, args.int8_min_agreement,
                                           '--int8-min-agreement')
                if shortfall:
                    raise ExportVerificationError(shortfall)
        except ExportVerificationError as exc:
            print(f'{PROG}: verification FAILED: {exc}', file=sys.stderr)
            args.output.unlink(missing_ok=True)
            return 3
    if args.tensorrt:
        from bisenet_ros.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
        backend = OnnxRuntimeBackend(args.output, 'cuda', 'fp16' if args.fp16 else None,
                                     providers=('tensorrt',))
        backend.run(probe[:1])
        figures['tensorrt'] = backend.describe()
    print(json.dumps({'output': str(args.output), 'input_size': size,
                      'precision': args.precision, 'verification': figures}, indent=2))
    return 0


def _check(args):
    """Re-measure an int8 file's evidence on this machine; print it, store it with --write."""
    from bisenet_ros.training.datasets import build_dataset
    from bisenet_ros.training.evidence import measure, write_evidence
    if not args.data:
        print(f'{PROG}: --check needs --data (a labelled root)', file=sys.stderr)
        return 2
    try:
        # The whole judgement of an untrusted file (graph, operators, memory) before it runs.
        meta = examine(args.check, RuntimeConfig(batch=1, threads=1)).metadata
        if meta.get('precision') != 'int8':
            raise ValueError(f'{args.check} is not an int8 file')
        qat = meta.get('int8_method') == 'qat'
        if not (qat or args.parent):
            raise ValueError('a post-training file is checked against its fp32 parent: '
                             'give --parent')
        recorded = meta.get('int8_evidence') or {}
        if qat and not (args.parent or recorded.get('runtimes')):
            raise ValueError('no recorded parent figures: give --parent')
        dataset = build_dataset(args.dataset, args.data, args.split)
        evidence = measure(args.check, args.parent, dataset, args.split,
                           recorded.get('classes'))
    except (ValueError, OSError, CheckpointError, BackendUnavailableError) as exc:
        print(f'{PROG}: {exc}', file=sys.stderr)
        return 2
    for name, figures in evidence['runtimes'].items():
        # Without --parent the fp32 figures are the recorded ones: fp32 does not change
        # between CPU classes the way int8 kernels do.
        kept = recorded.get('runtimes', {}).get(name, {})
        for key in ('fp32_miou', 'agreement'):
            figures.setdefault(key, kept.get(key))
    report = {'file': str(args.check), 'cpu_class': hardware.probe().cpu.cpu_class,
              'recorded': {'cpu_class': meta.get('int8_cpu_class'), 'evidence': recorded,
                           'int8_agreement': meta.get('int8_agreement')},
              'here': evidence}
    if args.write:
        if qat and not all(None not in f.values() for f in evidence['runtimes'].values()):
            print(f'{PROG}: a runtime here has no recorded parent figures: give '
                  '--parent to --write', file=sys.stderr)
            return 2
        meta = write_evidence(args.check, evidence)
        report['written'] = True
    # A QAT file passes or fails per runtime: each one's int8 kernels are judged alone.
    runtimes = sorted(meta['int8_evidence']['runtimes']) if qat and meta.get(
        'int8_evidence') else [None]
    report['gate'] = {
        runtime or 'file': int8_shortfall(meta, args.int8_min_agreement, '--int8-min-agreement',
                                          runtime) or 'passes'
        for runtime in runtimes}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
