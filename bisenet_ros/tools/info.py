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
Print what this machine has and which backend x precision pairs run here.

    bisenet info                    # the probe's summary and a table of pairs
    bisenet info --json -           # the same, machine-readable
    bisenet info --model work_dir/  # also the contract a model declares, field by field

``BISENET_ROS_HARDWARE`` (see bisenet_ros.runtime.hardware) masks features,
so ``BISENET_ROS_HARDWARE=avx2 bisenet info`` shows what an AVX2-only CPU runs.
"""

import dataclasses
import json
from pathlib import Path
import sys

from bisenet_ros.runtime import hardware
from bisenet_ros.tools.arguments import new_parser


def main(argv=None, prog='bisenet info'):
    """Print the probe; return 0."""
    parser = new_parser(prog, __doc__)
    parser.add_argument('--json', metavar='FILE',
                        help="also write the probe as JSON to FILE ('-': print it instead "
                             'of the text)')
    parser.add_argument('--model', type=Path, metavar='PATH',
                        help='also print the contract this model file (or mmdeploy work '
                             'folder) declares, and where each field came from')
    parser.add_argument('--class-table', metavar='NAME|FILE',
                        help="with --model: the class table option (default: the model's own)")
    args = parser.parse_args(argv)
    if args.class_table is not None and args.model is None:
        parser.error('--class-table applies to a --model: give the model it labels')
    if args.model is not None:
        status = _print_contract(prog, args.model, args.class_table)
        if status:
            return status
    try:
        found = hardware.probe()
    except ValueError as exc:  # a malformed BISENET_ROS_HARDWARE
        print(f'{prog}: {exc}', file=sys.stderr)
        return 2
    pairs = found.pairs()
    if args.json:
        text = json.dumps({
            'summary': found.summary(),
            'cpu': dict(dataclasses.asdict(found.cpu), features=sorted(found.cpu.features),
                        cpu_class=found.cpu.cpu_class, native_bf16=found.cpu.native_bf16),
            'cuda': [dataclasses.asdict(device) for device in found.cuda],
            'backends': found.backends,
            'pairs': [{'backend': b, 'device': d, 'precision': p, 'native': why is None,
                       'reason': why} for b, d, p, why in pairs]}, indent=2)
        if args.json == '-':
            print(text)
            return 0
        Path(args.json).write_text(text + '\n')
    print(found.summary())
    width = max(len(f'{b}:{d}:{p}') for b, d, p, _ in pairs)
    for backend, device, precision, why in pairs:
        print(f'  {f"{backend}:{device}:{precision}":<{width}}  {"runs" if why is None else why}')
    return 0


def _print_contract(prog, model, class_table):
    """Print a foreign model's contract (or say the file is this package's); return 0 or 1."""
    from bisenet_ros.runtime.foreign import contract_of, ContractError
    try:
        contract = contract_of(model, class_table)
    except (ContractError, OSError) as exc:
        print(f'{prog}: {exc}', file=sys.stderr)
        return 1
    if contract is None:
        print(f'{model}: a checkpoint or an export of this package (its metadata is its '
              'contract)')
    else:
        print(f'{contract.path}: a foreign model; its contract, field by field:')
        print('\n'.join(f'  {line}' for line in contract.describe()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
