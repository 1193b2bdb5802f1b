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
Benchmark backends and precisions side by side against torch eager fp32.

    python -m bisenet_ros.tools.bench            # full table (V1, V2; 2 sizes; batch 1, 4)
    python -m bisenet_ros.tools.bench --quick    # V2 at 1024x512, batch 1 (~2 minutes)
    python -m bisenet_ros.tools.bench --json out.json

Configurations run round-robin, one repetition each in turn, so machine noise
hits all of them alike. Inputs are real street frames (../shared/samples/street
when present, else --frames DIR, else a synthetic scene) resized to the network
size, i.e. a camera that already delivers that resolution. Per stage medians and
p90 (pre, network, post, render) and end to end (RGB in -> labels at input size
out, plus colour mask and overlay), speedup over torch eager fp32 end to end, and
argmax agreement with it over every frame, after the timed repeats (meaningful on
a trained model: the default is the shipped demonstration model for V2, random
weights for V1). int8 is calibrated on other real frames (CamVid train in
../shared, or --calibration DIR).

GOP/s is the network's arithmetic (torch's FLOP count) over its network time;
"roof" is that as a share of a large GEMM measured in the same runtime and
precision in the same run (bisenet_ros.tools.peaks), the practical peak here.
``--cpu-isa avx2`` re-runs itself with torch's and OpenVINO's kernels limited
to AVX2 (and the probe masked, so auto decides as there): an AVX2 robot's code
paths on this core, a proxy for its speed ratios, not for its clock.
"""

import argparse
import json
import os
from pathlib import Path
import statistics
import sys
import tempfile
import time

from bisenet_ros.checkpoint import load_checkpoint, save_checkpoint
from bisenet_ros.media import inputs
from bisenet_ros.models import build_model
from bisenet_ros.resources import demo_model_path
from bisenet_ros.runtime import BackendUnavailableError, build_segmenter, hardware
from bisenet_ros.runtime.config import MAX_BATCH, MAX_THREADS, size_argument
from bisenet_ros.runtime.options import AUTO, BACKENDS, PRECISIONS
from bisenet_ros.tools import peaks, samples
from bisenet_ros.tools.arguments import int_within, new_parser
import cv2
import numpy as np
import torch

# The baseline is the reference-equivalent network: torch eager, fp32, contiguous NCHW.
# 'auto:auto' is what runs by default: it shows which path the rule picks here and how close
# that is to the fastest row that keeps the accuracy bar.
DEFAULT_CONFIGS = ('torch:fp32:contiguous', 'torch:fp32', 'torch:bf16', 'onnxruntime:fp32',
                   'onnxruntime:int8', 'openvino:fp32', 'openvino:bf16', 'openvino:int8',
                   'auto:auto')
STAGES = ('pre_ms', 'network_ms', 'post_ms', 'render_ms', 'end_to_end_ms')


def sample_frames(folder=None):
    """Return real frames of ``folder`` (4 per video, 1 s apart at 30 fps), else a drawn scene."""
    if folder is None:
        return list(samples.generated_scene(4, 1024, 512))
    return samples.read_frames(folder, per_video=4, step=30)


def _percentile(values, q):
    return float(np.percentile(values, q)) if values else float('nan')


def _model_for(arch, model, tmp):
    if model is not None:
        return Path(model)
    if arch == 'bisenetv2' and demo_model_path() is not None:
        return demo_model_path()
    path = Path(tmp) / f'{arch}_random.safetensors'
    torch.manual_seed(0)
    save_checkpoint(path, build_model(arch, aux=False).eval(), {'arch': arch})
    return path


def config_argument(text):
    """Return ``text`` if it spells a row 'backend:precision[:contiguous][@file]' (argparse)."""
    spec, at, own_model = text.partition('@')
    parts = spec.split(':')
    backend, precision, layout = (parts + ['', ''])[:3] if len(parts) <= 3 else ('', '', '')
    if (backend not in (AUTO, *BACKENDS) or precision not in (AUTO, *PRECISIONS)
            or layout not in ('', 'contiguous') or (at and not own_model)):
        raise argparse.ArgumentTypeError(
            f'{text!r} is not backend:precision[:contiguous][@model file] with backend one of '
            f'{", ".join((AUTO, *BACKENDS))} and precision one of '
            f'{", ".join((AUTO, *PRECISIONS))}')
    return text


def _build(config, model_path, size, batch, calibration, cache_dir, threads):
    # 'backend:precision[:layout][@file]': a config may run its own model file, e.g. an
    # int8 .onnx from bisenet export or bisenet train --qat beside the checkpoint's rows.
    config, _, own_model = config.partition('@')
    model_path = Path(own_model) if own_model else model_path
    backend, precision, *layout = config.split(':')
    calibration = calibration if precision == 'int8' else None
    extra = {'channels_last': layout != ['contiguous']} if backend == 'torch' else {}
    # An int8 row is measured whatever its evidence says; auto keeps the default gate,
    # since what it would refuse is part of what it picks.
    if backend != 'auto':
        extra['int8_min_agreement'] = 0.0
    return build_segmenter(model_path, backend=backend, precision=precision, input_size=size,
                           batch=batch, threads=threads, cache_dir=cache_dir,
                           calibration_images=calibration, **extra)


def _one_pass(seg, images):
    t0 = time.perf_counter()
    results = seg.segment(images)
    t1 = time.perf_counter()
    for rgb, result in zip(images, results):
        seg.overlay(rgb, result.labels, 0.5)
    t2 = time.perf_counter()
    timing = {k: results[0].timings[k] for k in ('pre_ms', 'network_ms', 'post_ms')}
    timing.update(render_ms=(t2 - t1) * 1e3, end_to_end_ms=(t2 - t0) * 1e3)
    return timing


def _agreement(segmenters, baseline, batches):
    """Return, per config, its mean argmax agreement with ``baseline`` over every frame."""
    if baseline not in segmenters:
        return dict.fromkeys(segmenters)
    scores = {config: [] for config in segmenters}
    for images in batches:
        labels = {config: [r.labels for r in seg.segment(images)]
                  for config, seg in segmenters.items()}
        for config, ours in labels.items():
            scores[config] += [float(np.mean(a == b)) for a, b in zip(ours, labels[baseline])]
    return {config: float(np.mean(values)) for config, values in scores.items()}


def _ran(seg):
    """Return (backend, precision) that really ran in ``seg`` (auto resolved)."""
    return seg.backend.name, getattr(seg.backend, 'precision', None) or 'fp32'


def bench_case(arch, size, batch, configs, frames, calibration, args, tmp, roofs):
    """Measure every config for one (arch, size, batch); return result rows."""
    model_path = _model_for(arch, args.model, tmp)
    resized = [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]
    resized *= -(-batch // len(resized))  # fewer frames than a batch: they repeat
    batches = [resized[i:i + batch] for i in range(0, len(resized) - batch + 1, batch)]
    segmenters, failures = {}, {}
    for config in configs:
        try:
            segmenters[config] = _build(config, model_path, size, batch, calibration,
                                        Path(tmp) / 'cache', args.threads)
        except (BackendUnavailableError, ValueError) as exc:
            failures[config] = str(exc)
    if configs[0] in failures:  # every ratio is to it
        raise ValueError(f'the baseline config {configs[0]} cannot run here: '
                         f'{failures[configs[0]]}')
    missing = {_ran(seg) for seg in segmenters.values()} - set(roofs)
    roofs.update(peaks.measure_roofs(Path(tmp), missing, args.threads))
    for seg in segmenters.values():
        for _ in range(args.warmup):
            _one_pass(seg, batches[0])
    times = {config: [] for config in segmenters}
    for repeat in range(args.repeats):
        for config, seg in segmenters.items():
            times[config].append(_one_pass(seg, batches[repeat % len(batches)]))
    agreement = _agreement(segmenters, configs[0], batches)
    gflop = peaks.network_gflop(load_checkpoint(model_path)[0], size)
    rows = []
    base = statistics.median(t['end_to_end_ms'] for t in times[configs[0]])
    for config, timings in times.items():
        backend, precision = config.partition('@')[0].split(':')[:2]
        row = {'config': config, 'backend': backend, 'precision': precision,
               'arch': arch, 'size': f'{size[0]}x{size[1]}', 'batch': batch,
               'model': model_path.name, 'describe': segmenters[config].describe()}
        choice = segmenters[config].auto_choice
        if choice is not None:
            row['auto_chose'] = f'{choice.backend}:{choice.precision}'
        for stage in STAGES:
            values = [t[stage] for t in timings]
            row[f'{stage[:-3]}_median_ms'] = statistics.median(values)
            row[f'{stage[:-3]}_p90_ms'] = _percentile(values, 90)
        row['speedup_vs_torch_fp32'] = base / row['end_to_end_median_ms']
        # The network's arithmetic over its own time, against the GEMM roof of what ran.
        row['network_gflop'] = gflop
        row['network_gops'] = gflop * batch / row['network_median_ms'] * 1e3
        ran = _ran(segmenters[config])
        roof = roofs.get(ran)
        row['gemm_roof_gops'] = roof
        row['share_of_roof'] = row['network_gops'] / roof if roof else None
        row['argmax_agreement_vs_torch_fp32'] = agreement[config]
        overhead = row['pre_median_ms'] + row['post_median_ms'] + row['render_median_ms']
        row['pre_post_render_share_of_network'] = overhead / row['network_median_ms']
        rows.append(row)
    for config, why in failures.items():
        backend, precision = config.partition('@')[0].split(':')[:2]
        rows.append({'config': config, 'backend': backend, 'precision': precision,
                     'arch': arch, 'size': f'{size[0]}x{size[1]}', 'batch': batch,
                     'skipped': why})
    return rows


def format_table(rows):
    """Return the rows as a fixed-width text table."""
    head = (f'{"arch":<10}{"size":>10}{"b":>3} {"config":<23}{"pre":>7}{"net":>8}{"post":>7}'
            f'{"render":>7}{"e2e":>8}{"e2e p90":>8}{"speedup":>8}{"agree":>8}{"ovh":>6}'
            f'{"GOP/s":>7}{"roof":>6}')
    lines = [head, '-' * len(head)]
    for r in rows:
        config = f'auto ({r["auto_chose"]})' if 'auto_chose' in r else r['config']
        if '@' in config:  # a config's own model file: its name, not its path
            name, _, path = config.partition('@')
            stem = Path(path).stem
            config = (f'{name}@{stem}' if len(name) + len(stem) < 22
                      else f'{name}@..{stem[len(name) + len(stem) - 19:]}')
        if 'skipped' in r:
            lines.append(f'{r["arch"]:<10}{r["size"]:>10}{r["batch"]:>3} {config:<23}'
                         f'skipped: {r["skipped"]}')
            continue
        agree = r['argmax_agreement_vs_torch_fp32']
        lines.append(
            f'{r["arch"]:<10}{r["size"]:>10}{r["batch"]:>3} {config:<23}'
            f'{r["pre_median_ms"]:>7.1f}{r["network_median_ms"]:>8.1f}{r["post_median_ms"]:>7.1f}'
            f'{r["render_median_ms"]:>7.1f}{r["end_to_end_median_ms"]:>8.1f}'
            f'{r["end_to_end_p90_ms"]:>8.1f}{r["speedup_vs_torch_fp32"]:>7.2f}x'
            f'{(agree if agree is not None else float("nan")):>8.2%}'
            f'{r["pre_post_render_share_of_network"]:>6.0%}{r["network_gops"]:>7.0f}'
            f'{(r["share_of_roof"] if r["share_of_roof"] else float("nan")):>6.0%}')
    return '\n'.join(lines)


def main(argv=None, prog='bisenet bench'):
    """Run the benchmark and print the table (and JSON)."""
    parser = new_parser(prog, __doc__)
    parser.add_argument('--model', type=Path, help='checkpoint for every arch measured')
    parser.add_argument('--archs', nargs='+', default=['bisenetv2', 'bisenetv1'])
    parser.add_argument('--input-size', type=size_argument, nargs='+', metavar='WxH',
                        default=[(1024, 512), (2048, 1024)], help='network input sizes')
    parser.add_argument('--batch', type=int_within(1, MAX_BATCH), nargs='+', default=[1, 4],
                        help='images per forward pass')
    parser.add_argument('--configs', type=config_argument, nargs='+',
                        default=list(DEFAULT_CONFIGS),
                        help='backend:precision[:contiguous][@model file]; the first is the '
                             'baseline')
    parser.add_argument('--repeats', type=int_within(1), default=10)
    parser.add_argument('--warmup', type=int_within(0), default=2)
    parser.add_argument('--threads', type=int_within(1, MAX_THREADS), default=2)
    parser.add_argument('--frames', type=Path, help='folder of real frames')
    parser.add_argument('--calibration', type=Path,
                        help='folder of int8 calibration frames (default: CamVid train)')
    parser.add_argument('--calibration-count', type=int_within(1), default=16)
    parser.add_argument('--quick', action='store_true',
                        help='V2, 1024x512, batch 1, 8 repeats (~2 minutes)')
    parser.add_argument('--json', type=Path, help='also write the results as JSON here')
    parser.add_argument('--cpu-isa', choices=sorted(peaks.ISA_LIMITS),
                        help="run torch's and OpenVINO's kernels (and auto's rule) as on this "
                             'lower class; ONNX Runtime cannot be limited: it keeps this CPU')
    args = parser.parse_args(argv)
    limits = peaks.ISA_LIMITS.get(args.cpu_isa, {})
    if any(os.environ.get(k) != v for k, v in limits.items()):
        # The kernels' dispatchers read these once, at their first use: start afresh.
        argv = sys.argv[1:] if argv is None else list(argv)
        os.execve(sys.executable, [sys.executable, '-m', 'bisenet_ros.tools.bench', *argv],
                  dict(os.environ, **limits))
    if args.quick:
        args.archs, args.input_size, args.batch, args.repeats = (['bisenetv2'], [(1024, 512)],
                                                                 [1], 8)
    folder = args.frames or samples.street_folder()
    frames = sample_frames(folder)
    if not frames:
        print(f'{prog}: {folder}: no frames to time (images or videos)', file=sys.stderr)
        return 1
    source = str(folder) if folder else 'synthetic frames'
    calibration_dir = args.calibration or samples.calibration_folder()
    calibration = ([inputs.read_rgb(p) for p in
                    inputs.image_files(calibration_dir)[:args.calibration_count]]
                   if calibration_dir else frames)
    # Every table says which machine class its figures hold for.
    machine = hardware.probe().summary()
    if limits:
        machine += (f'; kernels limited to {args.cpu_isa} ('
                    + ' '.join(f'{k}={v}' for k, v in limits.items())
                    + '), except ONNX Runtime, which reads CPUID')
    print(f'hardware: {machine}\nframes: {len(frames)} from {source}; threads {args.threads}; '
          f'torch {torch.__version__}', flush=True)
    rows, roofs = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for arch in args.archs:
            for size in args.input_size:
                for batch in args.batch:
                    case = bench_case(arch, size, batch, args.configs, frames, calibration,
                                      args, tmp, roofs)
                    rows.extend(case)
                    print(format_table(case).split('\n', 2)[-1], flush=True)
    print(f'\nhardware: {machine}')
    print(format_table(rows))
    print('GEMM roofs here (GOP/s, %d threads): ' % args.threads + ', '.join(
        f'{b} {p} {v:.0f}' for (b, p), v in sorted(roofs.items()) if v))
    if args.json:
        args.json.write_text(json.dumps({'hardware': machine, 'frames': source,
                                         'threads': args.threads,
                                         'calibration': str(calibration_dir or source),
                                         'gemm_roofs_gops': {f'{b}:{p}': v for (b, p), v
                                                             in sorted(roofs.items())},
                                         'results': rows}, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
