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
Benchmark bisenet fleet: in-process against Ray, one worker against two.

A development benchmark, not a user command (it is not installed):

    python benchmarks/bench_fleet.py                 # 4 bags x 40 frames, 640x360
    python benchmarks/bench_fleet.py --bags 8 --frames 100 --model v2.pth

Writes generated street bags (raw rgb8) to a temporary folder and segments
them three times: in this process with one model on --threads threads, on a
local Ray cluster with one worker of --threads threads (whole bags as tasks:
the Ray path's overhead), and with --threads workers of one thread each.
The configurations run round-robin (--rounds) and the best rate of each is
shown, so a warm-up or a busy moment does not decide. Frames/s count the
segmenting alone; starting the cluster and loading each worker's model are
printed apart. Needs the cluster extra (Ray).
"""

import argparse
from pathlib import Path
import sys
import tempfile
import time

from bisenet_ros.media import bags
from bisenet_ros.resources import demo_model_path
from bisenet_ros.runtime import hardware
from bisenet_ros.runtime.config import parse_size, RuntimeConfig
from bisenet_ros.runtime.export import file_sha256
from bisenet_ros.tools.fleet import discovery
from bisenet_ros.tools.fleet.settings import RunSettings
from bisenet_ros.tools.fleet.worker import LocalWorkers
from bisenet_ros.tools.samples import generated_scene
from bisenet_ros.tools.segment_fleet import segment_bags

IMAGE = 'sensor_msgs/msg/Image'


def write_bags(folder, count, frames):
    """Write ``count`` bags of ``frames`` generated 640x360 rgb8 images at 10 Hz."""
    store = bags.typestore()
    header = store.types['std_msgs/msg/Header']
    stamp = store.types['builtin_interfaces/msg/Time']
    scene = list(generated_scene(frames))
    for index in range(count):
        with bags.BagWriter(folder / f'drive{index}') as writer:
            writer.add_topic('/camera/image_raw', IMAGE)
            for i, rgb in enumerate(scene):
                height, width = rgb.shape[:2]
                msg = store.types[IMAGE](
                    header=header(stamp=stamp(sec=i // 10, nanosec=i % 10 * 10**8),
                                  frame_id='camera'),
                    height=height, width=width, encoding='rgb8', is_bigendian=0,
                    step=width * 3, data=rgb.reshape(-1))
                writer.write('/camera/image_raw', i * 10**8, store.serialize_cdr(msg, IMAGE))


class _LentWorkers:
    """Started workers lent to one run: the run closes them, they stay for the next round."""

    def __init__(self, workers):
        self.workers = workers

    def run(self, tasks, on_progress):
        """Run ``tasks`` on the lent workers."""
        return self.workers.run(tasks, on_progress)

    def close(self):
        """Leave the workers running: the benchmark closes them at its end."""


def _timed_run(inputs, out, settings, identity, workers):
    """Segment the bags of ``inputs`` into ``out`` with started ``workers``; return (frames, s)."""
    began = time.monotonic()
    runs = segment_bags(discovery.find_bags([inputs]), out, settings, identity,
                        lambda paths: _LentWorkers(workers), chunk_frames=10**9)
    seconds = time.monotonic() - began
    if any(run.status != 'done' for run in runs):
        raise RuntimeError(f'a bag failed: {[run.error for run in runs if run.error]}')
    return sum(run.frames_out for run in runs), seconds


def _compare(folder, base, identity, args, ray_workers):
    """Run the configurations round-robin, --rounds times, and print the best rate of each."""
    wide = base.with_runtime(threads=args.threads)
    narrow = base.with_runtime(threads=1)
    configs = {f'in-process, 1 worker x {args.threads} threads': (wide, LocalWorkers(wide))}
    for settings, count in ((wide, 1), (narrow, args.threads)):
        began = time.monotonic()
        workers = ray_workers.RayWorkers(settings, count)
        name = f'Ray, {count} worker(s) x {settings.runtime.threads} thread(s)'
        configs[name] = settings, workers
        print(f'{name}: started in {time.monotonic() - began:.1f} s (not counted)')
    rates = dict.fromkeys(configs, 0.0)
    for round_index in range(args.rounds):
        for index, (name, (settings, workers)) in enumerate(configs.items()):
            out = folder / f'out{round_index}-{index}'
            frames, seconds = _timed_run(folder / 'in', out, settings, identity, workers)
            rates[name] = max(rates[name], frames / seconds)
    local_rate = next(iter(rates.values()))
    for name, rate in rates.items():
        print(f'{name + ":":<36}{rate:7.2f} frames/s  {rate / local_rate - 1:+6.1%} against '
              'in-process')


def main(argv=None):
    """Run the three configurations and print frames/s; return the exit status."""
    parser = argparse.ArgumentParser(prog='bench_fleet', description=__doc__.split('\n')[1])
    parser.add_argument('--model', type=Path, help='checkpoint (default: demo model)')
    parser.add_argument('--input-size', type=parse_size, default='512x256', metavar='WxH')
    parser.add_argument('--bags', type=int, default=4)
    parser.add_argument('--frames', type=int, default=40, help='frames per bag')
    parser.add_argument('--threads', type=int, default=2, help='CPU threads per machine')
    parser.add_argument('--rounds', type=int, default=2,
                        help='rounds over all configurations; the best of each is shown')
    args = parser.parse_args(argv)
    from bisenet_ros.tools.fleet import ray_workers
    model = args.model or demo_model_path()
    # Torch fp32 on the CPU: the benchmark compares ways of spreading work, not paths.
    base = RunSettings(RuntimeConfig(model=model, backend='torch', device='cpu',
                                     precision='fp32', input_size=args.input_size),
                       outputs=('labels',), copy_inputs=False)
    identity = base.identity(file_sha256(model), args.input_size)
    print(hardware.probe().summary())
    print(f'{args.bags} bags x {args.frames} frames of 640x360, network input '
          f'{args.input_size[0]}x{args.input_size[1]}, labels only')
    with tempfile.TemporaryDirectory(prefix='bench-fleet-') as folder:
        folder = Path(folder)
        write_bags(folder / 'in', args.bags, args.frames)
        began = time.monotonic()
        # Room for both Ray configurations at once; only one of them works at a time.
        ray_workers.connect(cpus=2 * args.threads)
        print(f'Ray local cluster started in {time.monotonic() - began:.1f} s (not counted)')
        try:
            _compare(folder, base, identity, args, ray_workers)
        finally:
            ray_workers.import_ray().shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
