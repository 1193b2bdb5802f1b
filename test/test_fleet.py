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


"""bisenet fleet: many bags, in-process or on a real local Ray cluster, nothing lost."""

import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import threading
import time

from bisenet_ros.media import bags
from bisenet_ros.runtime.config import RuntimeConfig
from bisenet_ros.runtime.export import file_sha256
from bisenet_ros.tools.fleet import discovery
from bisenet_ros.tools.fleet.settings import RunSettings
from bisenet_ros.tools.segment_fleet import main, segment_bags
import cv2
import numpy as np
import pytest
from rosbags.highlevel import AnyReader

IMAGE = 'sensor_msgs/msg/Image'
COMPRESSED = 'sensor_msgs/msg/CompressedImage'
# A small network input for speed (the reference checkpoint does not name one), and one
# thread everywhere: the in-process and the Ray runs must compute the same bytes.
# Small and pinned to one path: these tests are about bags, not about what auto picks.
SMALL = ['--input-size', '64x32', '--threads', '1', '--backend', 'torch', '--precision', 'fp32']


@pytest.fixture(scope='module')
def ray():
    """Return the ray module connected to a local 2-CPU cluster shared by this module's tests."""
    os.environ.setdefault('RAY_USAGE_STATS_ENABLED', '0')
    try:
        import ray
    except ImportError:
        if os.environ.get('CI') == 'true':
            pytest.fail("ray is missing: make test installs it with the 'cluster' extra")
        pytest.skip("ray is not installed (pip install 'bisenet_ros[cluster]')")
    ray.init(num_cpus=2, include_dashboard=False, logging_level='WARNING')
    yield ray
    ray.shutdown()


def _write_bag(path, frames, storage='mcap', corrupt_frame=None, seed=0):
    """Write a bag with a raw and a JPEG camera at 10 Hz; one JPEG may be garbage."""
    store = bags.typestore()
    header = store.types['std_msgs/msg/Header']
    stamp = store.types['builtin_interfaces/msg/Time']
    rng = np.random.default_rng(seed)
    with bags.BagWriter(path, storage=storage) as writer:
        writer.add_topic('/front/image_raw', IMAGE)
        writer.add_topic('/left/image/compressed', COMPRESSED)
        for i in range(frames):
            frame = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
            time_ns = 100 * 10**9 + i * 10**8
            raw = store.types[IMAGE](
                header=header(stamp=stamp(sec=100 + i, nanosec=7), frame_id='front'),
                height=48, width=64, encoding='rgb8', is_bigendian=0, step=192,
                data=frame.reshape(-1))
            writer.write('/front/image_raw', time_ns, store.serialize_cdr(raw, IMAGE))
            jpeg = (np.zeros(9, np.uint8) if i == corrupt_frame
                    else cv2.imencode('.jpg', frame)[1].reshape(-1))
            packed = store.types[COMPRESSED](
                header=header(stamp=stamp(sec=200 + i, nanosec=0), frame_id='left'),
                format='jpeg', data=jpeg)
            writer.write('/left/image/compressed', time_ns + 1,
                         store.serialize_cdr(packed, COMPRESSED))


@pytest.fixture(scope='module')
def drives(tmp_path_factory):
    """Return a folder of four bags: MCAP and sqlite3, one with a corrupt frame, one truncated."""
    root = tmp_path_factory.mktemp('drives')
    _write_bag(root / 'site_a' / 'drive1', 12, corrupt_frame=4, seed=1)
    _write_bag(root / 'site_a' / 'drive2', 6, storage='sqlite3', seed=2)
    _write_bag(root / 'site_b' / 'drive3', 8, seed=3)
    _write_bag(root / 'site_b' / 'broken', 4, seed=4)
    storage = root / 'site_b' / 'broken' / 'broken.mcap'
    storage.write_bytes(storage.read_bytes()[:300])
    return root


def _messages(bag):
    """Return [(topic, bag time, CDR bytes)] of every message in the bag, in order."""
    return [tuple(m[:1]) + tuple(m[2:]) for m in bags.read_messages(bag)]


def _report(out):
    report = json.loads((out / 'fleet-report.json').read_text())
    return report, {Path(e['input']).name: e for e in report['bags']}


@pytest.fixture(scope='module')
def runs(ray, checkpoint, drives, tmp_path_factory):
    """Segment ``drives`` in-process and on Ray; return {'local'|'ray': (exit status, root)}."""
    outs = tmp_path_factory.mktemp('runs')
    common = [str(drives), '--model', str(checkpoint), '--chunk-frames', '5', *SMALL]
    return {
        'local': (main([*common, '-o', str(outs / 'local')]), outs / 'local'),
        'ray': (main([*common, '-o', str(outs / 'ray'), '--ray', '--workers', '2']),
                outs / 'ray'),
    }


def test_a_ray_run_writes_exactly_what_the_in_process_run_writes(runs):
    (_, local), (_, ray_out) = runs['local'], runs['ray']
    for name in ('site_a/drive1', 'site_a/drive2', 'site_b/drive3'):
        assert _messages(ray_out / name) == _messages(local / name), name


def test_every_decodable_frame_gives_one_output_of_each_kind_with_its_header(runs, drives):
    _, out = runs['ray']
    topics = bags.read_topics(out / 'site_a' / 'drive1')
    assert {t: topics[t].count for t in topics} == {
        '/front/image_raw': 12, '/front/labels': 12, '/front/color': 12, '/front/overlay': 12,
        '/left/image/compressed': 12, '/left/image/labels': 11, '/left/image/color': 11,
        '/left/image/overlay': 11}
    labels = list(bags.read_image_messages(out / 'site_a' / 'drive1', ['/left/image/labels']))
    assert [(m.header.stamp.sec, m.header.frame_id, m.encoding) for _, _, m in labels] == [
        (200 + i, 'left', 'mono8') for i in range(12) if i != 4]


def test_big_bags_are_split_files_of_one_bag_that_any_reader_reads(runs):
    _, out = runs['ray']
    bag = out / 'site_a' / 'drive1'
    # 24 images in chunks of about 5 frames.
    assert sorted(p.name for p in bag.glob('*.mcap')) == [f'drive1_{i}.mcap' for i in range(5)]
    with AnyReader([bag]) as reader:
        assert reader.message_count == 12 * 2 + 11 * 3 + 12 * 3
        stamps = [t for c, t, _ in reader.messages() if c.topic == '/front/labels']
    assert stamps == sorted(set(stamps)) and len(stamps) == 12


def test_the_corrupt_frame_and_the_broken_bag_are_reported_and_the_rest_complete(runs):
    for status, out in runs.values():
        assert status == 1
        report, entries = _report(out)
        assert entries['broken']['status'] == 'failed'
        assert 'broken' in entries['broken']['error']
        assert [(f['topic'], f['stamp']) for f in entries['drive1']['failures']] == [
            ('/left/image/compressed', 100 * 10**9 + 4 * 10**8 + 1)]
        assert [entries[n]['status'] for n in ('drive1', 'drive2', 'drive3')] == ['done'] * 3
        assert (entries['drive2']['frames_in'], entries['drive2']['frames_out']) == (12, 12)
        assert report['totals']['done'] == 3 and report['backend'] == 'torch'
        assert not list(out.rglob('.*.partial'))


def test_a_rerun_skips_finished_bags_and_redoes_unfinished_ones(runs, checkpoint, drives):
    _, out = runs['ray']
    (out / 'site_b' / 'drive3').rename(out / 'site_b' / '.drive3.partial')  # as if cut off
    before = (out / 'site_a' / 'drive2' / 'drive2_0.mcap').stat().st_mtime_ns
    assert main([str(drives), '-o', str(out), '--model', str(checkpoint), '--chunk-frames',
                 '5', *SMALL, '--ray', '--workers', '2']) == 1
    _, entries = _report(out)
    assert [entries[n]['status'] for n in ('drive1', 'drive2', 'drive3', 'broken')] == [
        'skipped', 'skipped', 'done', 'failed']
    assert len(entries['drive1']['failures']) == 1, 'a skipped bag still lists its failures'
    assert (out / 'site_a' / 'drive2' / 'drive2_0.mcap').stat().st_mtime_ns == before
    assert _messages(out / 'site_b' / 'drive3') == _messages(runs['local'][1] / 'site_b' /
                                                             'drive3')


def test_a_worker_killed_mid_run_has_its_task_redone_and_every_frame_written_once(
        ray, checkpoint, tmp_path):
    from bisenet_ros.tools.fleet.ray_workers import RayWorkers
    for i in range(2):
        _write_bag(tmp_path / 'in' / f'long{i}', 30, seed=10 + i)
    # A bigger network input makes each chunk last long enough to be cut off.
    settings = RunSettings(RuntimeConfig(model=checkpoint, backend='torch', device='cpu',
                                         precision='fp32', threads=1, input_size=(512, 256)),
                           outputs=('labels',))
    identity = settings.identity(file_sha256(checkpoint), (512, 256))
    workers = RayWorkers(settings, 2, retries=2)
    victim = workers.pids()[0]
    out = tmp_path / 'out'

    def kill_when_busy():
        # Both workers have a chunk file open: each is inside its first task.
        while len(list(out.glob('.*.partial/*/*.mcap'))) < 2:
            time.sleep(0.01)
        os.kill(victim, signal.SIGKILL)
    killer = threading.Thread(target=kill_when_busy, daemon=True)
    killer.start()
    bag_runs = segment_bags(discovery.find_bags([tmp_path / 'in']), out, settings, identity,
                            lambda paths: workers, chunk_frames=10)
    killer.join(timeout=5)
    assert not killer.is_alive()
    assert [bag.status for bag in bag_runs] == ['done', 'done']
    assert sum(bag.redone_chunks for bag in bag_runs) >= 1, 'the killed task was redone'
    for i in range(2):
        stamps = [t for topic, t, _ in _messages(out / f'long{i}') if topic == '/front/labels']
        assert stamps == [100 * 10**9 + k * 10**8 for k in range(30)]


def test_a_checkpoint_for_onnx_runtime_is_exported_by_the_driver_and_run_on_ray(
        ray, checkpoint, drives, tmp_path, capsys):
    common = [str(drives / 'site_a' / 'drive2'), '--model', str(checkpoint), *SMALL,
              '--backend', 'onnxruntime', '--labels-only']
    assert main([*common, '-o', str(tmp_path / 'local')]) == 0
    assert main([*common, '-o', str(tmp_path / 'ray'), '--ray', '--workers', '2']) == 0
    assert _messages(tmp_path / 'ray' / 'drive2') == _messages(tmp_path / 'local' / 'drive2')
    report, _ = _report(tmp_path / 'ray')
    assert (report['backend'], report['model']['path']) == ('onnxruntime', str(checkpoint))


def test_auto_is_resolved_once_and_the_identity_names_what_ran(
        checkpoint, drives, tmp_path, capsys):
    from bisenet_ros.runtime import build_segmenter
    expected = build_segmenter(checkpoint, backend='auto', device='auto', precision='auto',
                               input_size=(64, 32), threads=1).auto_choice
    args = [str(drives / 'site_a' / 'drive2'), '-o', str(tmp_path), '--model', str(checkpoint),
            *SMALL, '--labels-only', '--backend', 'auto', '--device', 'auto', '--precision',
            'auto']
    assert main(args) == 0
    assert f'auto chose {expected.backend} {expected.device} {expected.precision}' in \
        capsys.readouterr().out
    report, _ = _report(tmp_path)
    assert (report['backend'], report['precision'], report['device']) == (
        expected.backend, expected.precision, expected.device)
    # The rerun resolves to the same path, and naming that path explicitly is the same run.
    assert main(args) == 0
    assert _report(tmp_path)[1]['drive2']['status'] == 'skipped'
    explicit = [*args[:-6], '--backend', expected.backend, '--device', expected.device,
                '--precision', expected.precision]
    assert main(explicit) == 0
    assert _report(tmp_path)[1]['drive2']['status'] == 'skipped'


def test_labels_only_writes_the_label_topics_alone(checkpoint, drives, tmp_path):
    assert main([str(drives / 'site_a' / 'drive2'), '-o', str(tmp_path),
                 '--model', str(checkpoint), *SMALL, '--labels-only']) == 0
    topics = sorted(bags.read_topics(tmp_path / 'drive2'))
    assert topics == ['/front/labels', '/left/image/labels']


def test_other_settings_redo_a_finished_bag(checkpoint, drives, tmp_path):
    args = [str(drives / 'site_a' / 'drive2'), '-o', str(tmp_path), '--model', str(checkpoint),
            *SMALL]
    assert main([*args, '--labels-only']) == 0
    assert main([*args, '--outputs', 'labels,color']) == 0
    _, entries = _report(tmp_path)
    assert entries['drive2']['status'] == 'done'
    assert '/front/color' in bags.read_topics(tmp_path / 'drive2')


def test_a_manifest_names_bags_relative_to_itself_and_outputs_mirror_it(drives, tmp_path):
    manifest = drives / 'bags.txt'
    manifest.write_text('# drives of the day\nsite_a/drive2\n\n' + str(drives / 'site_b') + '\n')
    try:
        found = discovery.find_bags([manifest, drives / 'site_a' / 'drive2'])
    finally:
        manifest.unlink()
    assert [(f.relative, f.error) for f in found] == [
        (Path('site_a/drive2'), None), (Path('broken'), None), (Path('drive3'), None)]


def test_a_missing_input_is_reported_and_the_others_are_done(
        checkpoint, drives, tmp_path, capsys):
    assert main([str(tmp_path / 'gone'), str(drives / 'site_a' / 'drive2'),
                 '-o', str(tmp_path / 'out'), '--model', str(checkpoint), *SMALL,
                 '--labels-only']) == 1
    _, entries = _report(tmp_path / 'out')
    assert entries['gone']['error'].endswith('does not exist')
    assert entries['drive2']['status'] == 'done'
    assert 'failed' in capsys.readouterr().err


@pytest.mark.parametrize('args', [
    ['--labels-only', '--outputs', 'color'],
    ['--outputs', 'labels,depth'],
    ['--chunk-frames', '0'],
    ['--ray=somewhere'],
    ['--ray-address', 'somewhere'],
])
def test_usage_errors_exit_2(checkpoint, drives, tmp_path, args):
    with pytest.raises(SystemExit) as exit_info:
        main([str(drives), '-o', str(tmp_path), '--model', str(checkpoint), *args])
    assert exit_info.value.code == 2


def test_an_output_root_inside_an_input_folder_or_two_bags_for_one_output_exit_2(
        checkpoint, drives, tmp_path, capsys):
    _write_bag(tmp_path / 'other' / 'drive2', 1)
    for inputs, out in (([drives], drives / 'out'),
                        ([drives / 'site_a' / 'drive2', tmp_path / 'other' / 'drive2'],
                         tmp_path / 'out')):
        assert main([*map(str, inputs), '-o', str(out), '--model', str(checkpoint)]) == 2
        assert len(capsys.readouterr().err.splitlines()) == 1
    assert not (tmp_path / 'out').exists()


def test_workers_that_do_not_see_the_storage_refuse_to_start(ray, checkpoint, tmp_path):
    from bisenet_ros.tools.fleet.ray_workers import RayWorkers, WorkerStartError
    with pytest.raises(WorkerStartError, match='does not see .*nowhere.*every node'):
        RayWorkers(RunSettings(RuntimeConfig(model=checkpoint, backend='torch', threads=1)), 1,
                   [tmp_path / 'nowhere'])


def test_the_core_and_the_node_never_import_ray():
    code = ('import sys, bisenet_ros.runtime, bisenet_ros.checkpoint, bisenet_ros.models, '
            'bisenet_ros.render, bisenet_ros.node, bisenet_ros.tools.segment_fleet; '
            "sys.exit('ray' in sys.modules)")
    assert subprocess.run([sys.executable, '-c', code]).returncode == 0


def test_segment_and_fleet_with_nothing_chosen_run_one_path_and_write_the_same_labels(
        drives, tmp_path):
    from bisenet_ros.runtime import build_segmenter
    from bisenet_ros.tools.segment import main as segment
    bag = drives / 'site_a' / 'drive2'
    # The shipped model, every runtime option left at its default: a user's first run.
    assert segment([str(bag), '-o', str(tmp_path / 'segment'), '--outputs', 'labels']) == 0
    assert main([str(bag), '-o', str(tmp_path / 'fleet'), '--labels-only']) == 0
    chosen = build_segmenter().auto_choice
    report, _ = _report(tmp_path / 'fleet')
    assert (report['backend'], report['precision']) == (chosen.backend, chosen.precision)
    segment_labels = [m for m in _messages(tmp_path / 'segment') if m[0].endswith('/labels')]
    fleet_labels = [m for m in _messages(tmp_path / 'fleet' / 'drive2')
                    if m[0].endswith('/labels')]
    assert len(segment_labels) == 12 and segment_labels == fleet_labels
