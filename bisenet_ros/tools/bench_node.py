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
Benchmark the node against the runtime alone, and under overload.

    python -m bisenet_ros.tools.bench_node [--model M] [--backend B] [--precision P]

1. Runtime alone: Segmenter.segment + colour mask + overlay per frame, in
   turn with (2) frame by frame, so that drifts of the machine hit both.
2. The node in its own process, fed one frame at a time (the next frame is sent
   when the previous overlay arrives): its receive-to-publish processing time
   and its inference time from /diagnostics; the difference to (1) is the
   node's overhead (message conversion, queues, filling three output
   messages), and processing minus inference is what the node adds around
   the segmenter in the same process.
3. Overload: frames published at --rate Hz (default 30) for --overload-frames
   (default 2000) while inference takes longer: processing time per diagnostics
   period, frames dropped, and the node's resident memory over the run.

Everything runs on loopback (LOCALHOST discovery, a random domain, the Fast DDS
large-image profile). Inputs are street frames (../shared/samples/street) or
synthetic ones, resized to the network size.
"""

import os
from pathlib import Path
import statistics
import subprocess
import sys
import threading
import time

from bisenet_ros.resources import config_path, demo_model_path
from bisenet_ros.runtime import BackendUnavailableError, build_segmenter, hardware
from bisenet_ros.runtime.config import MAX_THREADS, size_argument
from bisenet_ros.tools import samples
from bisenet_ros.tools.arguments import int_within, new_parser, positive_number
from bisenet_ros.tools.bench import sample_frames
from bisenet_ros.tools.processes import local_ros_env, stop_process
import cv2

PROCESSING = 'processing time p50 / p95 (ms)'
INFERENCE = 'inference time p50 / p95 (ms)'
DROPPED = 'frames dropped (newer frame arrived first)'
PUBLISHED = 'frames published'


def rss_mb(pid):
    """Return the resident memory of a process in MiB (from /proc)."""
    with open(f'/proc/{pid}/status') as status:
        for line in status:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    return float('nan')


def runtime_alone(seg, rgb):
    """Return (ms of segment + render, ms of the network) for one frame."""
    start = time.perf_counter()
    (result,) = seg.segment([rgb])
    seg.overlay(rgb, result.labels, 0.5)
    return (time.perf_counter() - start) * 1e3, result.timings['network_ms']


class Probe:
    """The benchmark's own ROS node: publishes frames, watches outputs and diagnostics."""

    def __init__(self):
        """Create the node and its topics, spinning in a thread."""
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import Image
        rclpy.init(args=[])
        self.node = rclpy.create_node('bisenet_bench_probe')
        self.image_type = Image
        self.publisher = self.node.create_publisher(Image, 'image', 5)
        self.outputs = {}
        self.lock = threading.Condition()
        for name in ('labels', 'color', 'overlay'):
            self.node.create_subscription(Image, name, self._on_output(name), 5)
        self.diagnostics = []
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag, 10)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        threading.Thread(target=self.executor.spin, daemon=True).start()

    def _on_output(self, name):
        def store(msg):
            with self.lock:
                self.outputs.setdefault(name, set()).add(msg.header.stamp.sec)
                self.lock.notify_all()
        return store

    def _on_diag(self, msg):
        for status in msg.status:
            self.diagnostics.append((time.monotonic(), {v.key: v.value for v in status.values}))

    def publish(self, rgb, index):
        """Publish ``rgb`` with header stamp ``index`` seconds."""
        from bisenet_ros.image_msgs import fill_image, new_image
        msg = fill_image(new_image(self.image_type), rgb, 'rgb8')
        msg.header.stamp.sec = index
        msg.header.frame_id = 'camera'
        self.publisher.publish(msg)

    def wait_for(self, index, timeout=60.0):
        """Wait until every output of frame ``index`` arrived."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while not all(index in self.outputs.get(n, ()) for n in ('labels', 'color',
                                                                     'overlay')):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.lock.wait(left)
        return True

    def wait_for_node(self, timeout=120.0):
        """Wait until the node subscribes to the images and publishes the outputs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.node.count_subscribers('image') and \
                    self.node.count_publishers('overlay'):
                return True
            time.sleep(0.1)
        return False

    def close(self):
        """Shut the node down."""
        import rclpy
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown()


def _p50(values_text):
    return float(values_text.split('/')[0]) if values_text and values_text != 'n/a' else None


def _median_of_p50s(diagnostics, key):
    values = [_p50(v.get(key)) for _, v in diagnostics]
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float('nan')


def main(argv=None, prog='bisenet bench-node'):
    """Run the three measurements and print the figures."""
    parser = new_parser(prog, __doc__)
    parser.add_argument('--model', type=Path, help='checkpoint (default: demonstration model)')
    parser.add_argument('--backend', default='torch')
    parser.add_argument('--precision', default=None,
                        help="network precision (default: the model file's own)")
    parser.add_argument('--input-size', type=size_argument, default='1024x512',
                        metavar='WxH', help='camera frame and network input size')
    parser.add_argument('--threads', type=int_within(1, MAX_THREADS), default=2)
    parser.add_argument('--frames', type=int_within(1), default=20, help='frames for (1) and (2)')
    parser.add_argument('--rate', type=positive_number, default=30.0,
                        help='overload publish rate')
    parser.add_argument('--overload-frames', type=int_within(1), default=2000)
    args = parser.parse_args(argv)
    print(f'hardware: {hardware.probe().summary()}', flush=True)
    frames = sample_frames(samples.street_folder())
    frames = [cv2.resize(f, args.input_size, interpolation=cv2.INTER_AREA) for f in frames]
    try:
        seg = build_segmenter(args.model, backend=args.backend, precision=args.precision,
                              input_size=args.input_size, threads=args.threads, batch=1)
    except (BackendUnavailableError, ValueError) as exc:  # e.g. a precision only emulated here
        print(f'bisenet bench-node: {exc}', file=sys.stderr)
        return 1
    for rgb in frames[:2]:  # warm-up
        runtime_alone(seg, rgb)

    os.environ.update(local_ros_env(config_path('fastdds_large_images_localhost.xml')))
    model = args.model or demo_model_path()
    ros_args = ['-p', f'model_path:={model}', '-p', f'backend:={args.backend}',
                '-p', f'input_width:={args.input_size[0]}',
                '-p', f'input_height:={args.input_size[1]}',
                '-p', f'threads:={args.threads}', '-p', 'max_batch:=1']
    if args.precision:
        ros_args += ['-p', f'precision:={args.precision}']
    node = subprocess.Popen([sys.executable, '-m', 'bisenet_ros.node', '--ros-args',
                             *ros_args], env=dict(os.environ))
    probe = Probe()
    try:
        if not probe.wait_for_node():
            print('the node did not come up', file=sys.stderr)
            return 1
        round_trips, alone, networks = [], [], []
        # Node and runtime alone take turns frame by frame, so drifts hit both.
        for index in range(args.frames):
            rgb = frames[index % len(frames)]
            start = time.perf_counter()
            probe.publish(rgb, index)
            if not probe.wait_for(index):
                print(f'frame {index} was not served', file=sys.stderr)
                return 1
            round_trips.append((time.perf_counter() - start) * 1e3)
            total_ms, network_ms = runtime_alone(seg, rgb)
            alone.append(total_ms)
            networks.append(network_ms)
        time.sleep(1.5)  # one more diagnostics period holds the last timings
        alone_ms, network_ms = statistics.median(alone), statistics.median(networks)
        print(f'runtime alone (alternating with the node): {alone_ms:.1f} ms per frame '
              f'(network {network_ms:.1f} ms)', flush=True)
        node_p50, inference_p50 = (_median_of_p50s(probe.diagnostics, key)
                                   for key in (PROCESSING, INFERENCE))
        overhead = node_p50 - alone_ms
        print(f'node, one frame at a time: processing p50 {node_p50:.1f} ms (receive to '
              f'publish), of which inference {inference_p50:.1f} ms; round trip '
              f'{statistics.median(round_trips):.1f} ms', flush=True)
        print(f'  overhead over the runtime alone (segment + render): {overhead:.1f} ms = '
              f'{overhead / network_ms:.1%} of the network time', flush=True)
        print(f'  in the node, processing - inference (conversion, render, publishing, '
              f'queue): {node_p50 - inference_p50:.1f} ms', flush=True)

        probe.diagnostics.clear()
        rss = [(0.0, rss_mb(node.pid))]
        start = time.monotonic()
        for index in range(args.overload_frames):
            target = start + index / args.rate
            time.sleep(max(0.0, target - time.monotonic()))
            probe.publish(frames[index % len(frames)], 100000 + index)
            if index % int(args.rate) == 0:
                rss.append((time.monotonic() - start, rss_mb(node.pid)))
        time.sleep(3.0)
        rss.append((time.monotonic() - start, rss_mb(node.pid)))
        periods = [(t - start, _p50(v.get(PROCESSING)), v) for t, v in probe.diagnostics]
        timed = [(t, p) for t, p, _ in periods if p is not None]
        last = periods[-1][2] if periods else {}
        third = max(1, len(timed) // 3)
        print(f'overload: {args.overload_frames} frames at {args.rate:.0f} Hz over '
              f'{time.monotonic() - start:.0f} s; published {last.get(PUBLISHED)}, dropped '
              f'{last.get(DROPPED)}')
        print('  processing p50 first third {:.1f} ms, last third {:.1f} ms'.format(
            statistics.median(p for _, p in timed[:third]),
            statistics.median(p for _, p in timed[-third:])))
        print('  node RSS: start {:.0f} MiB, after 10% {:.0f} MiB, end {:.0f} MiB, max {:.0f} '
              'MiB'.format(rss[0][1], rss[max(1, len(rss) // 10)][1], rss[-1][1],
                           max(v for _, v in rss)))
        return 0
    finally:
        probe.close()
        stop_process(node)


if __name__ == '__main__':
    sys.exit(main())
