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
Train BiSeNetV1/V2 (``bisenet train``).

Settings come from a YAML file (``--config``) overridden by flags; a YAML key
and its flag are one setting (``crop_size``, ``--crop-size``). The run is
iteration based with a poly schedule; ``time_budget_s`` additionally stretches
the schedule over wall time, so that a run on a shared CPU still finishes its
decay on time. A run writes under ``runs/<name>/`` (``name``: the config file's
stem, or ``--name``): ``last.pth`` (resumable, also written on SIGINT/SIGTERM),
``best.pth``, ``metrics.jsonl`` and the best model by validation mIoU,
``<name>.safetensors``. Nothing is written inside the installed package, whose
weights are the shipped ones.

``--qat --model CHECKPOINT`` fine-tunes that network with NNCF's int8
quantisers instead (same data, loss and schedule; refused when the data's
classes are not the checkpoint's) and ends by writing an int8 ONNX file
(``<name>.onnx``, the name ending in ``_qat`` by default) with its evidence: val
mIoU of the file and of its fp32 parent in each runtime, measured here. A QAT
run never selects on val, so those figures are held out.
"""

import argparse
from pathlib import Path
import shlex
import signal
import sys

from bisenet_ros.runtime.config import size_argument
from bisenet_ros.training.checkpoints import export_best
from bisenet_ros.training.config import DEFAULTS, load_config, RUNS_DIR, SETTINGS
from bisenet_ros.training.datasets import CLASS_PRESETS
from bisenet_ros.training.qat_trainer import QatTrainer
from bisenet_ros.training.trainer import percent, Trainer
import torch

PROG = 'bisenet train'


def build_parser(prog=PROG):
    """Return the parser: run options, then one flag per setting (None = not given)."""
    # No abbreviations: each option has one spelling (--data, --model), not its prefixes.
    p = argparse.ArgumentParser(prog=prog, allow_abbrev=False, description=(
        'Train BiSeNetV1/V2, or fine-tune a checkpoint (--model), writing under '
        'runs/<name>/.'))
    p.add_argument('--config', metavar='FILE',
                   help='YAML file with any of the settings below (default: none)')
    p.add_argument('--name', help='run name, its folder under --runs-dir and its model file '
                   "(default: the config file's stem, or train; _qat appended with --qat)")
    p.add_argument('--runs-dir', default=RUNS_DIR, metavar='DIR',
                   help=f'folder of the runs (default: {RUNS_DIR})')
    p.add_argument('--resume', nargs='?', const='auto', metavar='LAST_PTH',
                   help='continue from a last.pth; bare: <out_dir>/last.pth when it exists '
                   '(default: start afresh)')
    p.add_argument('--export-best', action='store_true',
                   help='only write <out_dir>/best.pth to --output (default: train)')
    p.add_argument('--max-time-iters', type=int, metavar='N',
                   help='stop after N iterations of this process, for timing (default: none)')
    group = p.add_argument_group(
        'settings', 'each also a key of the --config file; a flag given wins over the file')
    for key, (default, text) in SETTINGS.items():
        flag = '--' + key.replace('_', '-')
        if 'default:' not in text and 'required' not in text:
            text = f'{text} (default: {_shown(key, default)})'
        if isinstance(default, bool) or key == 'channels_last':
            # A bare flag means true: ``--qat``, as well as ``--qat true``.
            group.add_argument(flag, type=_parse_bool, nargs='?', const=True, metavar='BOOL',
                               help=text)
        elif key in ('crop_size', 'input_size'):
            group.add_argument(flag, type=size_argument, metavar='WxH', help=text)
        elif isinstance(default, list) or key == 'eval_classes':
            group.add_argument(flag, type=_parse_list, metavar='A,B', help=text)
        elif key == 'time_budget_s':
            group.add_argument(flag, type=float, metavar='S', help=text)
        elif isinstance(default, (int, float)):
            group.add_argument(flag, type=type(default), help=text,
                               metavar='N' if isinstance(default, int) else 'X')
        else:
            metavar = {'data': 'DIR', 'model': 'CKPT', 'out_dir': 'DIR', 'output': 'FILE'}
            group.add_argument(flag, metavar=metavar.get(key, 'NAME'), help=text)
    return p


def _shown(key, default):
    if default is None:
        return 'none'
    if key in ('crop_size', 'input_size'):
        return 'x'.join(str(side) for side in default)
    if isinstance(default, list):
        return ','.join(str(v) for v in default)
    return str(default).lower() if isinstance(default, bool) else default


def _parse_bool(text):
    if text.lower() == 'auto':
        return 'auto'
    if text.lower() in ('1', 'true', 'yes', 'on'):
        return True
    if text.lower() in ('0', 'false', 'no', 'off'):
        return False
    raise argparse.ArgumentTypeError(f'{text!r} is not a boolean (true, false or auto)')


def _parse_list(text):
    if text in CLASS_PRESETS:
        return text
    try:
        return [float(v) if '.' in v else int(v) for v in text.split(',') if v]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'{text!r} is not a comma-separated list of numbers (or one of '
            f'{", ".join(CLASS_PRESETS)})') from None


def main(argv=None, prog=None):
    """Entry point of ``bisenet train``; return the exit status."""
    prog = prog or PROG
    args = build_parser(prog).parse_args(argv)
    command = f'{prog} ' + ' '.join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    try:
        cfg = load_config(args.config, {key: getattr(args, key) for key in DEFAULTS},
                          args.name, args.runs_dir)
        if args.export_best:
            export_best(Path(cfg['out_dir']) / 'best.pth', cfg['output'])
            return 0
        trainer = (QatTrainer if cfg['qat'] else Trainer)(cfg, command)
        if args.resume:
            _resume(trainer, args.resume)
    except ValueError as exc:  # a setting, a refused path, a class set that does not fit
        print(f'{prog}: {exc}', file=sys.stderr)
        return 2
    except FileNotFoundError as exc:  # the data, the config or the checkpoint
        print(f'{prog}: {exc}', file=sys.stderr)
        return 1
    trainer.log(f'training {cfg["arch"]} on {cfg["dataset"]} ({len(trainer.train_set)} frames)'
                f' into {trainer.out_dir}, device {trainer.device}, autocast '
                f'{trainer.autocast_dtype}, {torch.get_num_threads()} threads')

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
        trainer.log(f'best val mIoU {percent(best["miou"])}  (wrote {cfg["output"]})')
    return 130 if trainer.stop_requested else 0


def _resume(trainer, resume):
    """Restore ``resume`` ('auto': <out_dir>/last.pth when it exists) into ``trainer``."""
    path = trainer.out_dir / 'last.pth' if resume == 'auto' else Path(resume)
    if path.exists():
        trainer.resume(path)
    elif resume != 'auto':
        raise FileNotFoundError(f'--resume {path}: no such file')


if __name__ == '__main__':
    sys.exit(main())
