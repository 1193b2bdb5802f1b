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
``bisenet``: the one command of bisenet_ros, a subcommand per task.

    bisenet segment street.jpg -o out/
    bisenet SUBCOMMAND --help

Each subcommand lives in its own module under ``bisenet_ros.tools`` and is
imported only when run, so ``bisenet --help`` needs neither torch nor rclpy.
The ROS node keeps its own executable, ``segmentation_node``, for ``ros2 run``.
"""

import importlib
import os
import sys

# Set to see the traceback behind a one-line error (for a bug report).
TRACEBACK_VARIABLE = 'BISENET_ROS_TRACEBACK'

# subcommand -> (module under bisenet_ros.tools, one line of what it does)
SUBCOMMANDS = {
    'segment': ('segment', 'segment images, folders, videos or a rosbag2 offline'),
    'fleet': ('segment_fleet', 'segment many bags, in this process or on a Ray cluster'),
    'export': ('export', 'write a verified ONNX file (fp32 or int8) of a checkpoint'),
    'evaluate': ('evaluate', 'score any model the runtime runs on a labelled split'),
    'train': ('train', 'train or fine-tune BiSeNet (also quantisation-aware)'),
    'bench': ('bench', 'time every backend and precision side by side'),
    'info': ('info', 'what this machine runs natively (the capability probe)'),
    'demo': ('demo', 'run the node on sample frames and write what it published'),
    'record': ('record', 'record topics to a rosbag2 (MCAP) without a ROS install'),
    'play': ('play', 'play a rosbag2 without a ROS install'),
    'dds-check': ('dds_check', 'measure large-image delivery over DDS here'),
    'bench-node': ('bench_node', "the node's overhead and its behaviour under overload"),
}


def usage():
    """Return the top-level help text."""
    width = max(map(len, SUBCOMMANDS))
    lines = ['usage: bisenet SUBCOMMAND [options]   (bisenet SUBCOMMAND --help for its options)',
             '', 'BiSeNet semantic segmentation for ROS 2, offline and on topics.', '',
             'subcommands:']
    lines += [f'  {name:<{width}}  {summary}' for name, (_, summary) in SUBCOMMANDS.items()]
    return '\n'.join(lines)


def main(argv=None):
    """Run ``bisenet SUBCOMMAND ...``; return the subcommand's exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ('-h', '--help'):
        print(usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f'bisenet: unknown subcommand {name!r}\n\n{usage()}', file=sys.stderr)
        return 2
    module = importlib.import_module(f'bisenet_ros.tools.{SUBCOMMANDS[name][0]}')
    try:
        return module.main(rest, prog=f'bisenet {name}')
    except SystemExit as exc:  # argparse's --help (0) and usage errors (2), a tool's message
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)  # what Python would print for it
        return 1
    except KeyboardInterrupt:  # Ctrl-C where a tool has no handler of its own
        print(f'\nbisenet {name}: interrupted', file=sys.stderr)
        return 130
    except (OSError, ValueError) as exc:
        # What a file or a value the user gave makes a tool raise, where the tool has no
        # message of its own: one line that names it, never a traceback.
        if os.environ.get(TRACEBACK_VARIABLE):
            raise
        print(f'bisenet {name}: {_one_line(exc)} (set {TRACEBACK_VARIABLE}=1 for the '
              'traceback)', file=sys.stderr)
        return 1


def _one_line(exc):
    return ' '.join(str(exc).split()) or type(exc).__name__


if __name__ == '__main__':
    sys.exit(main())
