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
Train BiSeNetV1/V2 (``bisenet-train``).

Settings come from a YAML file (``--config``) overridden by flags. The run is
iteration based with a poly schedule; ``time_budget_s`` additionally stretches
the schedule over wall time, so that a run on a shared CPU still finishes its
decay on time. ``out_dir`` receives ``last.pth`` (resumable, also written on
SIGINT/SIGTERM), ``best.pth`` and ``metrics.jsonl``; the best model by
validation mIoU is also written with ``save_checkpoint`` to ``output``.

``--qat --init CHECKPOINT`` fine-tunes that network with NNCF's int8
quantisers instead (same data, loss and schedule; refused when the data's
classes are not the checkpoint's) and ends by writing an int8 ONNX file
(``output``, default ``<out_dir>/qat_int8.onnx``) with its evidence: val mIoU of
the file and of its fp32 parent in each runtime, measured here. A QAT run
never selects on val, so those figures are held out.
"""


import argparse
from pathlib import Path
import shlex
import signal
import sys

from bisenet_ros.training.config import DEFAULTS, load_config
from bisenet_ros.training.datasets import CLASS_PRESETS
from bisenet_ros.training.trainer import export_best, Trainer
import torch


def parse_args(argv=None):
    """Parse the command line; flags override the YAML config, which overrides defaults."""
    summary = __doc__.strip().splitlines()[0]
    p = argparse.ArgumentParser(prog='bisenet-train', description=summary)
    p.add_argument('--config', help='YAML file with any of the settings below')
    p.add_argument('--resume', nargs='?', const='auto',
                   help='continue from a last.pth (default: <out_dir>/last.pth)')
    p.add_argument('--export-best', action='store_true',
                   help='only write <out_dir>/best.pth to --output with save_checkpoint')
    p.add_argument('--max-time-iters', type=int, default=None,
                   help='stop after this many iterations of this process (for timing)')
    for key, value in DEFAULTS.items():
        flag = '--' + key.replace('_', '-')
        if isinstance(value, bool) or key == 'channels_last':
            # A bare flag means true: ``--qat``, as well as ``--qat true``.
            p.add_argument(flag, type=_parse_bool, nargs='?', const=True, default=None,
                           metavar='BOOL')
        elif isinstance(value, list) or key == 'eval_classes':
            p.add_argument(flag, type=_parse_list, default=None, metavar='A,B')
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            p.add_argument(flag, type=type(value), default=None)
        elif key == 'time_budget_s':
            p.add_argument(flag, type=float, default=None)
        else:
            p.add_argument(flag, default=None)
    return p.parse_args(argv)


def _parse_bool(text):
    if text.lower() == 'auto':
        return 'auto'
    if text.lower() in ('1', 'true', 'yes', 'on'):
        return True
    if text.lower() in ('0', 'false', 'no', 'off'):
        return False
    raise argparse.ArgumentTypeError(f'expected a boolean, got {text!r}')


def _parse_list(text):
    if text in CLASS_PRESETS:
        return text
    return [float(v) if '.' in v else int(v) for v in text.split(',') if v]


def main(argv=None):
    """Entry point of ``bisenet-train``."""
    args = parse_args(argv)
    cfg = load_config(args.config, {key: getattr(args, key) for key in DEFAULTS})
    out_dir = Path(cfg['out_dir'])
    if args.export_best:
        if not cfg['output']:
            raise SystemExit('--export-best needs --output')
        export_best(out_dir / 'best.pth', cfg['output'])
        return 0
    command = 'bisenet-train ' + ' '.join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    try:
        trainer = Trainer(cfg, command)
    except (FileNotFoundError, ValueError) as exc:  # data root, init checkpoint, settings
        raise SystemExit(f'bisenet-train: {exc}') from None
    if args.resume:
        path = out_dir / 'last.pth' if args.resume == 'auto' else Path(args.resume)
        if path.exists():
            trainer.resume(path)
        elif args.resume != 'auto':
            raise SystemExit(f'--resume: {path} does not exist')
    trainer.log(f'training {cfg["arch"]} on {cfg["dataset"]} ({len(trainer.train_set)} frames)'
                f', device {trainer.device}, autocast {trainer.autocast_dtype}, '
                f'{torch.get_num_threads()} threads')

    def request_stop(signum, frame):
        # Finish the current iteration, then save: a half-applied step is never stored.
        # A second Ctrl-C while waiting aborts at once (the previous last.pth remains).
        if trainer.stop_requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        trainer.stop_requested = True
    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        best = trainer.run(args.max_time_iters)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if best is not None:
        trainer.log(f'best val mIoU {best["miou"]:.4f}')
    return 130 if trainer.stop_requested else 0


if __name__ == '__main__':
    sys.exit(main())
