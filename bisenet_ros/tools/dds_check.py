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
Check how well this machine's DDS delivers camera-size images (``bisenet dds-check``).

For each QoS (best effort, reliable) and each Fast DDS setting (the default,
then every ``--profile`` given), a publisher process sends ``--count`` rgb8
images of ``--width`` x ``--height`` at ``--rate`` Hz to a subscriber process;
the table shows how many arrived and the latency from publish to callback
(header stamp to receive time, same clock). Two processes, because inside one
process Fast DDS hands samples over without any transport.

Discovery is kept on this machine (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST)
on a random ROS_DOMAIN_ID unless one is set.

Example::

    bisenet dds-check --profile config/fastdds_large_images.xml
"""

import argparse
import json
from pathlib import Path
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from bisenet_ros.node.transport import profile_problem
from bisenet_ros.runtime.options import MAX_IMAGE_SIDE
from bisenet_ros.tools.arguments import int_within, new_parser, positive_number
from bisenet_ros.tools.processes import local_ros_env, stop_process

QOS_CHOICES = ('best_effort', 'reliable')
# The subscriber is told to report once the publisher is gone and this has passed.
DRAIN_S = 2.0
# Wide enough for 'fastdds_large_images_localhost.xml (publisher only)'.
SETTING_WIDTH = 52


def _qos(reliability, depth):
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    return QoSProfile(depth=depth, reliability=ReliabilityPolicy[reliability.upper()])


def _stop_flag():
    stop = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda s, _f: stop.append(s))
    return stop


def run_publisher(args):
    """Publish ``args.count`` images once a subscriber is matched (child process)."""
    import rclpy
    from rclpy.duration import Duration
    from rclpy.signals import SignalHandlerOptions
    from sensor_msgs.msg import Image

    stop = _stop_flag()
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node('bisenet_dds_check_publisher')
    try:
        publisher = node.create_publisher(Image, args.topic, _qos(args.reliability, 10))
        msg = Image(height=args.height, width=args.width, encoding='rgb8',
                    step=args.width * 3)
        msg.header.frame_id = 'camera'
        # Random bytes: nothing in the path gets to compress a blank frame.
        msg.data = random.randbytes(args.height * args.width * 3)
        deadline = time.monotonic() + args.timeout
        while publisher.get_subscription_count() == 0 and not stop:
            if time.monotonic() > deadline:
                print('no subscriber matched', file=sys.stderr)
                return 1
            time.sleep(0.05)
        # Matching is seen by each side at its own moment; let the reader catch up.
        time.sleep(0.5)
        period = 1.0 / args.rate
        start = time.monotonic()
        for index in range(args.count):
            if stop:
                break
            delay = start + index * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(time.time_ns(), 10**9)
            publisher.publish(msg)
        publisher.wait_for_all_acked(Duration(seconds=5))
        return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def run_subscriber(args):
    """Receive images until signalled; print a JSON report (child process)."""
    import rclpy
    from rclpy.signals import SignalHandlerOptions
    from sensor_msgs.msg import Image

    stop = _stop_flag()
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node('bisenet_dds_check_subscriber')
    latencies = []

    def on_image(msg):
        sent = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        latencies.append((time.time_ns() - sent) / 1e6)

    try:
        node.create_subscription(Image, args.topic, on_image, _qos(args.reliability, 10))
        print('ready', flush=True)
        while not stop:
            rclpy.spin_once(node, timeout_sec=0.1)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    report = {'received': len(latencies)}
    if latencies:
        ordered = sorted(latencies)
        report.update(mean_ms=statistics.fmean(latencies), median_ms=statistics.median(latencies),
                      p95_ms=ordered[int(0.95 * (len(ordered) - 1))], max_ms=ordered[-1])
    print(json.dumps(report), flush=True)
    return 0


def _child(role, args, env, log):
    command = [sys.executable, '-m', 'bisenet_ros.tools.dds_check', '--role', role,
               '--topic', args.topic, '--count', str(args.count), '--width', str(args.width),
               '--height', str(args.height), '--rate', str(args.rate),
               '--reliability', args.reliability, '--timeout', str(args.timeout)]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=log, text=True)


def measure(args, profile, publisher_only):
    """Run one publisher/subscriber pair; return the subscriber's report (dict)."""
    base = local_ros_env(own_domain=False)
    with_profile = dict(base)
    if profile is not None:
        with_profile['FASTDDS_DEFAULT_PROFILES_FILE'] = str(Path(profile).resolve())
    with tempfile.TemporaryFile('w+') as log:
        subscriber = _child('subscriber', args, base if publisher_only else with_profile, log)
        publisher = None
        try:
            if subscriber.stdout.readline().strip() != 'ready':
                raise RuntimeError('the subscriber process did not start')
            publisher = _child('publisher', args, with_profile, log)
            publisher.wait(args.timeout + args.count / args.rate + 10)
            time.sleep(DRAIN_S)
            stop_process(subscriber, 10)
            report = json.loads(subscriber.stdout.read().strip().splitlines()[-1])
        except (RuntimeError, ValueError, IndexError, subprocess.TimeoutExpired):
            log.seek(0)
            raise RuntimeError(f'measurement failed:\n{log.read()}') from None
        finally:
            for proc in (publisher, subscriber):
                if proc is not None:
                    stop_process(proc, 10)
    report.update(profile=str(profile) if profile else 'default', reliability=args.reliability,
                  publisher_only=publisher_only, sent=args.count,
                  size=f'{args.width}x{args.height}')
    return report


def format_row(report):
    """Return one table line of a report."""
    setting = Path(report['profile']).name
    if report['publisher_only']:
        setting += ' (publisher only)'
    latency = ('{mean_ms:8.1f} {median_ms:8.1f} {p95_ms:8.1f} {max_ms:8.1f}'.format(**report)
               if report['received'] else f'{"-":>8} {"-":>8} {"-":>8} {"-":>8}')
    return (f'{setting:<{SETTING_WIDTH}} {report["reliability"]:<12} '
            f'{report["received"]:>4}/{report["sent"]:<4} {latency}')


def profile_argument(text):
    """Return ``text`` if it is a Fast DDS XML profile (argparse type), not a misnamed row."""
    problem = profile_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(f'{text}: {problem}')
    return text


def parse_args(argv=None, prog=None):
    """Parse the command line."""
    parser = new_parser(prog or 'bisenet dds-check', __doc__)
    parser.add_argument('--profile', action='append', default=[], type=profile_argument,
                        help='Fast DDS XML profile to compare with the default (repeatable)')
    parser.add_argument('--publisher-only', action='store_true',
                        help='also measure each profile given to the publisher alone')
    parser.add_argument('--count', type=int_within(1), default=200,
                        help='images per run (default: 200)')
    parser.add_argument('--width', type=int_within(1, MAX_IMAGE_SIDE), default=1024,
                        help='image width (default: 1024)')
    parser.add_argument('--height', type=int_within(1, MAX_IMAGE_SIDE), default=512,
                        help='image height (default: 512)')
    parser.add_argument('--rate', type=positive_number, default=30.0,
                        help='images per second (default: 30)')
    parser.add_argument('--reliability', choices=QOS_CHOICES, action='append', default=None,
                        help='QoS to measure (repeatable; default: both)')
    parser.add_argument('--json', metavar='FILE',
                        help="also write the reports as JSON lines to FILE ('-': print them "
                             'instead of the table)')
    parser.add_argument('--topic', default='/bisenet_dds_check/image', help=argparse.SUPPRESS)
    parser.add_argument('--timeout', type=positive_number, default=20.0,
                        help='longest wait for the two processes to match (default: 20)')
    parser.add_argument('--role', choices=('publisher', 'subscriber'), default=None,
                        help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None, prog='bisenet dds-check'):
    """Measure every combination and print the table; return 0, 1 if a run failed."""
    args = parse_args(argv, prog)
    if args.role is not None:
        args.reliability = (args.reliability or ['best_effort'])[-1]
        return (run_publisher if args.role == 'publisher' else run_subscriber)(args)
    settings = [(None, False)] + [(p, False) for p in args.profile]
    if args.publisher_only:
        settings += [(p, True) for p in args.profile]
    print(f'{args.count} rgb8 images of {args.width}x{args.height} at {args.rate:g} Hz, '
          f'latency in ms\n{"Fast DDS setting":<{SETTING_WIDTH}} {"QoS":<12} {"received":<9} '
          f'{"mean":>8} {"median":>8} {"p95":>8} {"max":>8}', flush=True)
    status = 0
    reports = []
    for reliability in args.reliability or QOS_CHOICES:
        for profile, publisher_only in settings:
            run = argparse.Namespace(**{**vars(args), 'reliability': reliability})
            try:
                report = measure(run, profile, publisher_only)
            except RuntimeError as error:
                print(error, file=sys.stderr)
                status = 1
                continue
            reports.append(report)
            print(json.dumps(report) if args.json == '-' else format_row(report), flush=True)
    if args.json and args.json != '-':
        Path(args.json).write_text(''.join(json.dumps(report) + '\n' for report in reports))
    return status


if __name__ == '__main__':
    sys.exit(main())
