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
bisenet fleet: segment many rosbag2 bags, in this process or on a Ray cluster.

    bisenet fleet drives/ -o segmented/                      # in this process
    bisenet fleet drives/ -o segmented/ --ray                # on a local Ray cluster
    bisenet fleet bags.txt -o /shared/seg --ray-address auto # on this node's cluster

Inputs are bags, folders searched for bags, or manifests (one path a line).
Each bag becomes one output bag under the output root, at the path it has
below its input folder, with labels/color/overlay beside each image topic as
bisenet segment writes them (--labels-only: labels alone, without the input
images). Big bags are split into chunks of about --chunk-frames frames,
written by different workers as the split files of one bag. A bag is written
under a hidden temporary name and renamed when complete; a rerun skips the
bags whose output records the same model, settings and package version, and
redoes the others. A JSON report lists every bag (--json, default:
<output>/fleet-report.json). 'auto' (the default backend, device and
precision) is resolved once, on the machine that starts the run.

Exit status: 0 when every bag is done (now or before), 1 when a bag failed
or a frame could not be decoded (each listed), 2 for a usage error.
"""

import logging
import os
from pathlib import Path
import signal
import sys
import time
import uuid

from bisenet_ros.checkpoint import CheckpointError
from bisenet_ros.media import bags
from bisenet_ros.resources import demo_model_path
from bisenet_ros.runtime import BackendUnavailableError, build_segmenter, RuntimeConfig
from bisenet_ros.runtime.export import file_sha256
from bisenet_ros.runtime.foreign.contract import model_file
from bisenet_ros.runtime.options import DEFAULT_MAX_PIXELS, MAX_IMAGE_PIXELS
from bisenet_ros.tools.arguments import fraction, int_within, new_parser, runtime_config
from bisenet_ros.tools.fleet import discovery
from bisenet_ros.tools.fleet import layout
from bisenet_ros.tools.fleet import output_bags
from bisenet_ros.tools.fleet import ray_workers
from bisenet_ros.tools.fleet.chunks import ChunkTask, split_span
from bisenet_ros.tools.fleet.report import BagRun, write_report
from bisenet_ros.tools.fleet.settings import RunSettings
from bisenet_ros.tools.fleet.worker import LocalWorkers
from bisenet_ros.tools.segment import DEFAULT_OUTPUTS, OUTPUTS, parse_outputs
from bisenet_ros.tools.segment_bag import BagSegmentation
from bisenet_ros.weights_by_name import resolve_model
from tqdm import tqdm

PROG = 'bisenet fleet'
# CPU threads of each Ray worker unless --threads says otherwise.
RAY_WORKER_THREADS = 2


def build_parser(prog=PROG):
    """Return the argument parser of bisenet fleet."""
    parser = new_parser(prog, __doc__)
    parser.add_argument('inputs', nargs='+', type=Path,
                        help='bags, folders of bags (searched recursively), manifests')
    parser.add_argument('-o', '--output', type=Path, required=True, help='output root')
    parser.add_argument('--outputs', help=f'comma-separated subset of {",".join(OUTPUTS)} '
                                          f'(default: {DEFAULT_OUTPUTS})')
    parser.add_argument('--labels-only', action='store_true',
                        help='write the labels topics only, without copies of the input images')
    parser.add_argument('--alpha', type=fraction, default=0.5, help='overlay opacity, 0..1')
    parser.add_argument('--topics', nargs='+', help='image topics (default: all of each bag)')
    parser.add_argument('--max-image-pixels', type=int_within(1, MAX_IMAGE_PIXELS),
                        default=DEFAULT_MAX_PIXELS,
                        help='largest input image accepted (8K)')
    parser.add_argument('--chunk-frames', type=int_within(1), default=1000,
                        help='split bigger bags into chunks of about this many frames')
    parser.add_argument('--json', type=Path, metavar='FILE',
                        help='JSON report (default: <output>/fleet-report.json)')
    parser.add_argument('--ray', action='store_true',
                        help='run on Ray: a local cluster for this run, or the one '
                             '--ray-address (also --ray=ADDRESS) names')
    parser.add_argument('--ray-address', metavar='ADDRESS',
                        help='join this Ray cluster: auto, host:port or ray://head:10001')
    parser.add_argument('--workers', type=int_within(1),
                        help='Ray workers, one model each (default: as many as the cluster '
                             'has GPUs, or CPUs / --threads)')
    parser.add_argument('--gpus-per-worker', type=float, default=1.0,
                        help='GPUs each Ray worker asks with device cuda (0.5: two per GPU)')
    parser.add_argument('--retries', type=int, default=3,
                        help='times a task is retried after its worker died')
    RuntimeConfig.add_arguments(parser)
    return parser


def _parse(parser, argv):
    """Parse ``argv``; ``--ray=ADDRESS`` is ``--ray-address ADDRESS`` (never an input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    argv = [part for token in argv for part in (
        ('--ray-address', token.partition('=')[2]) if token.startswith('--ray=') else (token,))]
    args = parser.parse_args(argv)
    if args.ray_address is not None:
        args.ray = args.ray_address
    return args


def _settings(parser, args):
    """Return the RunSettings of the arguments; exit 2 through ``parser`` on a usage error."""
    if args.labels_only and args.outputs not in (None, 'labels'):
        parser.error(f'--labels-only writes labels alone; it cannot go with --outputs '
                     f'{args.outputs}')
    which = parse_outputs(parser, args.outputs or ('labels' if args.labels_only
                                                   else DEFAULT_OUTPUTS))
    if args.ray not in (False, True):
        try:
            ray_workers.endpoint(args.ray)
        except ValueError as exc:
            parser.error(str(exc))
    runtime = runtime_config(parser, args, model=args.model or demo_model_path(),
                             confidence='confidence' in which)
    return RunSettings(
        runtime, outputs=tuple(sorted(which)), copy_inputs=not args.labels_only,
        alpha=args.alpha, topics=tuple(args.topics) if args.topics else None,
        max_image_pixels=args.max_image_pixels)


def _plan(bag_runs, out_root, settings, identity, chunk_frames):
    """Skip finished bags, fail unreadable ones, and return the chunk tasks of the rest."""
    tasks = []
    for index, bag in enumerate(bag_runs):
        if bag.status != 'pending':
            continue
        try:
            record = output_bags.finished_record(bag.output, identity, out_root)
            if record is not None:
                bag.skip(record)
                continue
            plan = BagSegmentation(bag.input, settings.outputs, settings.topics)
            ranges = split_span(*bags.time_span(bag.input), plan.frames, chunk_frames)
            output_bags.start(bag.output)
        except (bags.BagError, output_bags.OutputTakenError, ValueError, OSError) as exc:
            bag.fail(exc)
            continue
        bag.topics, bag.frames, bag.chunks_left = plan.topics, plan.frames, len(ranges)
        tasks += [ChunkTask((index, chunk), str(bag.input),
                            str(output_bags.chunk_path(bag.output, chunk)), start, stop)
                  for chunk, (start, stop) in enumerate(ranges)]
    return tasks


def _finish(bag, chunk_count, identity):
    """Assemble and rename a bag whose chunks are all back, or drop it when one failed."""
    if bag.status != 'failed':
        try:
            output_bags.assemble(bag.output, chunk_count, bag.record(identity))
            bag.status = 'done'
            return
        except (OSError, ValueError, KeyError, output_bags.OutputTakenError) as exc:
            bag.fail(f'{bag.output}: could not be assembled ({exc})')
    output_bags.abandon(bag.output)


def segment_bags(found, out_root, settings, identity, start_workers, chunk_frames=1000):
    """
    Segment the discovered bags ``found`` under ``out_root``; return their BagRuns.

    ``identity`` is what outputs record (RunSettings.identity);
    ``start_workers(paths)`` returns the workers (LocalWorkers, RayWorkers)
    once there is work, given the input paths they must see.
    """
    bag_runs = [BagRun(bag, Path(out_root) / bag.relative) for bag in found]
    tasks = _plan(bag_runs, out_root, settings, identity, chunk_frames)
    for bag in bag_runs:
        if bag.status != 'pending':
            tqdm.write(bag.line())
    if not tasks:
        return bag_runs
    pending = [bag for bag in bag_runs if bag.status == 'pending']
    chunk_counts = {id(bag): bag.chunks_left for bag in pending}
    try:
        workers = start_workers([bag.input for bag in pending])
    except BaseException:
        for bag in pending:
            output_bags.abandon(bag.output)
        raise
    try:
        with tqdm(total=sum(bag.frames for bag in pending), unit='frame', desc='frames',
                  smoothing=0.1) as bar:
            for result in workers.run(tasks, lambda frames: bar.update(frames - bar.n)):
                bag = bag_runs[result['key'][0]]
                if bag.add(result):
                    _finish(bag, chunk_counts[id(bag)], identity)
                    bar.write(bag.line())
            bar.update(bar.total - bar.n)
    finally:
        workers.close()
    return bag_runs


def _ray_workers(args, settings, out_root):
    """Return (a start_workers function for Ray, the settings its workers run, their count)."""
    cpus, gpus = ray_workers.cluster_resources()
    device = settings.runtime.device
    threads = settings.runtime.threads or RAY_WORKER_THREADS
    count = args.workers or max(1, int(gpus // args.gpus_per_worker) if device == 'cuda'
                                else cpus // threads)
    settings = settings.with_runtime(threads=threads)

    def start_workers(paths):
        # A marker only this run writes: a worker seeing it sees the same output root.
        marker = out_root / f'.bisenet-fleet-{uuid.uuid4().hex}'
        out_root.mkdir(parents=True, exist_ok=True)
        marker.touch()
        try:
            return ray_workers.RayWorkers(settings, count, [marker, *paths], args.retries,
                                          args.gpus_per_worker)
        finally:
            marker.unlink()
    return start_workers, settings, count


def _resolve_auto(settings):
    """
    Return (settings with 'auto' resolved, the Segmenter that resolved it or None).

    'auto' is resolved once, here, on the machine that starts the run: every
    worker then runs that one path, so all outputs of a run come from the same
    numbers and its identity names what ran. A worker that cannot run it fails
    with the probe's reason rather than quietly taking another path.
    """
    if not settings.runtime.automatic:
        return settings, None
    seg = build_segmenter(config=settings.runtime)
    choice = seg.auto_choice
    if choice is None:  # only the device was left open: the GPU where there is one
        return settings.with_runtime(device=seg.config.device), seg
    print(f'{PROG}: auto chose {choice.backend} {choice.device} {choice.precision} on this '
          f'machine ({choice.reason}); every worker runs it')
    settings = settings.with_runtime(backend=choice.backend, device=choice.device,
                                     precision=choice.precision)
    if choice.model:  # a checkpoint's int8 sibling: the workers load that file
        settings = settings.with_runtime(model=choice.model)
    return settings, seg


def _driver_model(args, settings, resolved=None):
    """
    Return (driver Segmenter, the model file workers load).

    In-process the Segmenter is the one that runs (``resolved`` when auto built
    it already). For Ray it checks the model on this machine's CPU and, for a
    checkpoint meant for an ONNX backend, exports it once: the .onnx is what
    the workers get.
    """
    runtime = settings.runtime
    if not args.ray:
        return resolved or build_segmenter(config=runtime), runtime.model
    seg = resolved or build_segmenter(config=runtime.replace(device='cpu', precision=None))
    exported = runtime.backend != 'torch' and Path(runtime.model).suffix != '.onnx'
    return seg, Path(seg.info.path) if exported else Path(runtime.model)


def _print_outcome(bag_runs, report_path):
    """Print failures and summary (``report_path`` None: not written); return the exit status."""
    failed = [bag for bag in bag_runs if not bag.ok]
    for bag in failed:
        if bag.status == 'failed':
            print(f'{PROG}: failed {bag.input}: {bag.error}', file=sys.stderr)
        for failure in bag.failures:
            print(f'{PROG}: undecodable {bag.input} {failure["topic"]} at {failure["stamp"]}: '
                  f'{failure["reason"]}', file=sys.stderr)
    counts = {s: sum(b.status == s for b in bag_runs) for s in ('done', 'skipped', 'failed')}
    print(f'{counts["done"]} bag(s) done, {counts["skipped"]} skipped (already done), '
          f'{counts["failed"]} failed; report: {report_path or "not written"}')
    if failed:
        print(f'{PROG}: {len(failed)} bag(s) failed or have undecodable frames (listed above)',
              file=sys.stderr)
    return 1 if failed else 0


def _run(args, settings, found, out_root):
    """Connect, load the model, segment ``found``; return (the report's run entry, BagRuns)."""
    started = False
    try:
        if args.ray:
            cpus = (args.workers or 0) * (args.threads or RAY_WORKER_THREADS) or os.cpu_count()
            started = ray_workers.connect(None if args.ray is True else args.ray, cpus)
        # A published name is downloaded once, here; the run records the file it loaded.
        model = resolve_model(settings.runtime.model, settings.runtime.cache_dir)
        settings = settings.with_runtime(model=model)
        settings, resolved = _resolve_auto(settings)
        seg, worker_model = _driver_model(args, settings, resolved)
        settings = settings.with_runtime(model=worker_model)
        if args.ray:
            start_workers, settings, count = _ray_workers(args, settings, out_root)
        else:
            start_workers, count = (lambda paths: LocalWorkers(settings, seg)), 1
        digest = file_sha256(model_file(model))  # an mmdeploy folder: its network
        identity = settings.identity(digest, seg.input_size)
        bag_runs = segment_bags(found, out_root, settings, identity, start_workers,
                                args.chunk_frames)
    finally:
        if started:
            ray_workers.import_ray().shutdown()
    run = {'model': {'path': str(model), 'digest': digest,
                     'arch': seg.info.arch},
           **identity, 'device': settings.runtime.device, 'threads': settings.runtime.threads,
           'ray': args.ray, 'workers': count}
    return run, bag_runs


def main(argv=None, prog=PROG):
    """Segment the bags of the given inputs; return the exit status."""
    parser = build_parser(prog)
    args = _parse(parser, argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    settings = _settings(parser, args)
    out_root = args.output
    report_path = args.json or out_root / 'fleet-report.json'
    named = []
    found = discovery.find_bags(args.inputs, named)
    try:
        layout.check_layout(out_root, found, named, report_path)
    except layout.LayoutError as exc:
        print(f'{prog}: {exc}', file=sys.stderr)
        return 2
    if not found:
        print(f'{prog}: no bags in {" ".join(map(str, args.inputs))}', file=sys.stderr)
        return 1
    began = time.monotonic()
    try:
        with ray_workers.sigterm_ends_run():  # on Ray or in this process alike
            run, bag_runs = _run(args, settings, found, out_root)
    except ray_workers.Terminated:
        print(f'{prog}: stopped by SIGTERM; a rerun resumes the unfinished bags', file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print(f'{prog}: stopped by Ctrl-C; a rerun resumes the unfinished bags', file=sys.stderr)
        return 128 + signal.SIGINT
    except (CheckpointError, BackendUnavailableError, RuntimeError, ValueError,
            OSError) as exc:
        print(f'{prog}: {exc}', file=sys.stderr)
        return 1
    try:
        write_report(report_path, run, bag_runs, time.monotonic() - began)
    except OSError as exc:
        print(f'{prog}: could not write the report {report_path}: {exc.strerror or exc}; '
              'the previous one is left as it was', file=sys.stderr)
        return max(1, _print_outcome(bag_runs, None))
    return _print_outcome(bag_runs, report_path)


if __name__ == '__main__':
    sys.exit(main())
