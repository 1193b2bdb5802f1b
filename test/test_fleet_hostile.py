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
bisenet fleet against hostile layouts, full disks and silent clusters (issue 22, defects 4-7).

Outputs that nest or overlap an input, however named, are refused before
any work; a rerun deletes nothing it did not write; the report survives a
full disk; a Ray address that does not answer, and SIGTERM, end the tool in
bounded time. Processes are real: a subprocess under RLIMIT_FSIZE, a silent
TCP listener, a real local Ray cluster.
"""

import json
import os
from pathlib import Path
import signal
import socket
import subprocess
import sys
import time

from bisenet_ros.tools.segment_fleet import main
import pytest
from test_fleet import _write_bag, SMALL
import yaml

TOOL = [sys.executable, '-m', 'bisenet_ros.tools.segment_fleet']


def _refused(capsys, *args):
    """Run the tool on ``args``; return its one stderr line, asserting exit 2 and nothing else."""
    status = main([*map(str, args)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1, err
    return err[0]


@pytest.fixture
def tree(tmp_path):
    """Return a folder with bags p/x, q/x/y (a bag below a folder named like p's bag) and d/a."""
    _write_bag(tmp_path / 'p' / 'x', 2)
    _write_bag(tmp_path / 'q' / 'x' / 'y', 2)
    _write_bag(tmp_path / 'd' / 'a', 2)
    return tmp_path


@pytest.mark.parametrize('order', [('p/x', 'q'), ('q', 'p/x')])
def test_two_inputs_whose_outputs_nest_are_refused_in_either_order(
        tree, checkpoint, capsys, order):
    line = _refused(capsys, *(tree / name for name in order), '-o', tree / 'out',
                    '--model', checkpoint)
    assert str(tree / 'p' / 'x') in line and str(tree / 'q' / 'x' / 'y') in line
    assert 'one inside the other' in line
    assert not (tree / 'out').exists(), 'nothing is written before the check'


def _manifest(path, *entries):
    path.write_text(''.join(f'{entry}\n' for entry in entries))
    return path


@pytest.mark.parametrize('entry, out', [
    ('d', 'd/seg'),              # the red team's case: a folder listed, the output inside it
    ('d/a', 'd/a/seg'),          # a bag listed, the output inside the bag
    ('d', 'd'),                  # the output root is the listed folder
    ('./d/../d', 'd/seg'),       # the same folder, spelt otherwise
])
def test_a_manifest_entry_is_checked_as_an_input_given_on_the_command_line(
        tree, checkpoint, capsys, entry, out):
    manifest = _manifest(tree / 'm.txt', entry)
    line = _refused(capsys, manifest, '-o', tree / out, '--model', checkpoint)
    assert 'inside it' in line or 'overlaps the input' in line
    assert not (tree / 'd' / 'seg').exists()


def test_an_output_root_reached_through_a_symbolic_link_into_an_input_is_refused(
        tree, checkpoint, capsys):
    (tree / 'd' / 'seg').mkdir()
    (tree / 'elsewhere').symlink_to(tree / 'd' / 'seg')
    line = _refused(capsys, tree / 'd', '-o', tree / 'elsewhere', '--model', checkpoint)
    assert str(tree / 'elsewhere') in line and str(tree / 'd') in line
    assert list((tree / 'd' / 'seg').iterdir()) == []


def test_an_output_that_would_hold_an_input_is_refused(tree, checkpoint, capsys):
    # p/x goes to out/x, which would hold the input bag out/x/y named directly.
    _write_bag(tree / 'out' / 'x' / 'y', 1)
    line = _refused(capsys, tree / 'p' / 'x', tree / 'out' / 'x' / 'y', '-o', tree / 'out',
                    '--model', checkpoint)
    assert str(tree / 'p' / 'x') in line and str(tree / 'out' / 'x' / 'y') in line
    assert sorted(p.name for p in (tree / 'out').iterdir()) == ['x']


def test_a_bag_file_and_a_bag_folder_of_one_name_are_refused(tree, checkpoint, capsys):
    _write_bag(tree / 'files' / 'folder', 1)
    next((tree / 'files' / 'folder').glob('*.mcap')).rename(tree / 'files' / 'x.mcap')
    line = _refused(capsys, tree / 'p' / 'x', tree / 'files' / 'x.mcap', '-o', tree / 'out',
                    '--model', checkpoint)
    assert 'both be written to' in line and str(tree / 'files' / 'x.mcap') in line


def test_a_bag_named_like_another_bags_temporary_folder_is_refused(tree, checkpoint, capsys):
    _write_bag(tree / 'hidden' / '.x.partial', 1)
    line = _refused(capsys, tree / 'p' / 'x', tree / 'hidden' / '.x.partial', '-o',
                    tree / 'out', '--model', checkpoint)
    assert '.x.partial' in line


def test_a_manifest_entry_that_is_the_manifests_own_bag_would_be_the_output_root(
        tree, checkpoint, capsys):
    manifest = _manifest(tree / 'd' / 'a' / 'm.txt', '.')
    line = _refused(capsys, manifest, '-o', tree / 'out', '--model', checkpoint)
    assert 'output root' in line and 'itself' in line


@pytest.mark.parametrize('report', ['m.txt', 'out/p/x/report.json', 'd/report.json'])
def test_a_report_that_would_overwrite_an_input_or_go_into_an_output_bag_is_refused(
        tree, checkpoint, capsys, report):
    manifest = _manifest(tree / 'm.txt', 'p/x', 'd')
    line = _refused(capsys, manifest, '-o', tree / 'out', '--json', tree / report,
                    '--model', checkpoint)
    assert str(tree / report) in line
    assert manifest.read_text() == 'p/x\nd\n'


def _segment(*args):
    """Run the tool in this process, labels only at a small size; return its exit status."""
    return main([*map(str, args), '--labels-only', *SMALL])


def _files(folder):
    """Return {path below ``folder``: (size, mtime)} of every file in it."""
    return {p.relative_to(folder): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob('*') if p.is_file()}


def _entry(out, name):
    report = json.loads((out / 'fleet-report.json').read_text())
    return next(e for e in report['bags'] if Path(e['input']).name == name)


def test_a_later_run_never_writes_a_bag_inside_an_earlier_runs_bag(tree, checkpoint):
    out = tree / 'out'
    assert _segment(tree / 'p' / 'x', '-o', out, '--model', checkpoint) == 0
    before = _files(out / 'x')
    assert _segment(tree / 'q', '-o', out, '--model', checkpoint) == 1
    assert 'inside the bag' in _entry(out, 'y')['error']
    assert _files(out / 'x') == before


def test_a_later_run_never_replaces_a_folder_holding_an_earlier_runs_bag(tree, checkpoint):
    out = tree / 'out'
    assert _segment(tree / 'q', '-o', out, '--model', checkpoint) == 0
    before = _files(out)
    assert _segment(tree / 'p' / 'x', '-o', out, '--model', checkpoint) == 1
    assert 'not written by bisenet fleet' in _entry(out, 'x')['error']
    assert {p: s for p, s in _files(out).items() if p.name != 'fleet-report.json'} == {
        p: s for p, s in before.items() if p.name != 'fleet-report.json'}


@pytest.mark.parametrize('foreign', ['notes.txt', 'y/metadata.yaml'])
def test_a_rerun_that_redoes_a_bag_deletes_nothing_it_did_not_write(tree, checkpoint, foreign):
    out = tree / 'out'
    assert _segment(tree / 'p' / 'x', '-o', out, '--model', checkpoint) == 0
    # Someone's file, or a bag moved in, and one of the output's own files gone: a redo.
    (out / 'x' / foreign).parent.mkdir(exist_ok=True)
    (out / 'x' / foreign).write_text('keep me\n')
    next((out / 'x').glob('*.mcap')).unlink()
    assert _segment(tree / 'p' / 'x', '-o', out, '--model', checkpoint) == 1
    assert f'holds {out / "x" / Path(foreign).parts[0]}' in _entry(out, 'x')['error']
    assert (out / 'x' / foreign).read_text() == 'keep me\n'
    assert not list(out.glob('.x.*')), 'the attempt left no temporary folder'


def test_a_leftover_temporary_folder_is_removed_only_when_it_holds_this_tools_files(
        tree, checkpoint):
    out = tree / 'out'
    (out / '.x.partial' / 'x_0').mkdir(parents=True)
    (out / '.x.partial' / 'keep.txt').write_text('keep me\n')
    assert _segment(tree / 'p' / 'x', '-o', out, '--model', checkpoint) == 1
    assert 'keep.txt' in _entry(out, 'x')['error']
    assert (out / '.x.partial' / 'keep.txt').read_text() == 'keep me\n'
    (out / '.x.partial' / 'keep.txt').unlink()
    assert _segment(tree / 'p' / 'x', '-o', out, '--model', checkpoint) == 0
    assert not (out / '.x.partial').exists()


# Run the tool with files capped at LIMIT bytes: a write past it fails with EFBIG, as on a
# full disk (SIGXFSZ, which would kill the process instead, is ignored as a shell can).
CAPPED = """
import resource, signal, sys
from bisenet_ros.tools.segment_fleet import main
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
sys.exit(main(sys.argv[2:]))
"""


def test_a_report_that_cannot_be_written_leaves_the_previous_one_and_says_so_in_one_line(
        tree, checkpoint):
    out, args = tree / 'out', [tree / 'p' / 'x', '-o', tree / 'out', '--model', checkpoint]
    assert _segment(*args) == 0
    previous = (out / 'fleet-report.json').read_bytes()
    # The rerun skips the bag, so the report is all it writes; it cannot be written whole.
    run = subprocess.run([sys.executable, '-c', CAPPED, str(len(previous) // 2),
                          *map(str, args), '--labels-only', *SMALL],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stderr
    errors = [line for line in run.stderr.splitlines() if 'bisenet fleet' in line]
    assert len(errors) == 1 and 'could not write the report' in errors[0], run.stderr
    assert 'File too large' in errors[0] and 'Traceback' not in run.stderr
    assert '0 bag(s) done, 1 skipped' in run.stdout, 'the summary is still printed'
    assert (out / 'fleet-report.json').read_bytes() == previous
    assert sorted(p.name for p in out.iterdir()) == ['fleet-report.json', 'x']


def test_a_report_path_that_is_a_folder_fails_in_one_line_and_the_folder_is_kept(
        tree, checkpoint, capsys):
    (tree / 'report').mkdir()
    (tree / 'report' / 'keep.txt').write_text('keep me\n')
    assert _segment(tree / 'p' / 'x', '-o', tree / 'out', '--json', tree / 'report',
                    '--model', checkpoint) == 1
    captured = capsys.readouterr()
    assert [line for line in captured.err.splitlines() if 'bisenet fleet' in line] == [
        f'bisenet fleet: could not write the report {tree / "report"}: Is a directory; '
        'the previous one is left as it was']
    assert '1 bag(s) done' in captured.out and (tree / 'out' / 'x').is_dir()
    assert [p.name for p in (tree / 'report').iterdir()] == ['keep.txt']
    assert [p.name for p in tree.iterdir() if p.name.startswith('.report')] == []


@pytest.fixture
def silent_head():
    """Return a listening TCP socket on the loopback that never answers (a dead Ray head)."""
    with socket.socket() as listener:
        listener.bind(('127.0.0.1', 0))
        listener.listen(16)
        yield listener


def _tool(tree, *args, env=None):
    """Start the tool on p/x as a subprocess; return (process, its start time)."""
    process = subprocess.Popen([*TOOL, str(tree / 'p' / 'x'), '-o', str(tree / 'out'),
                                *map(str, args)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               env={**os.environ, **(env or {})})
    return process, time.monotonic()


def _own_lines(stderr):
    """Return the tool's own lines of ``stderr`` (a local cluster's Ray logs its own)."""
    assert 'Traceback' not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith('bisenet fleet')]


def _lines(stderr):
    """Return every line of ``stderr``: a failed join holds back what Ray's C++ core logs."""
    return [line for line in stderr.splitlines() if line.strip()]


def test_a_ray_address_where_nothing_listens_fails_at_once_in_one_line(tree):
    with socket.socket() as closed:
        closed.bind(('127.0.0.1', 0))
        port = closed.getsockname()[1]
    for address in (f'127.0.0.1:{port}', f'ray://127.0.0.1:{port}'):
        process, began = _tool(tree, '--ray-address', address)
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 1 and time.monotonic() - began < 30
        assert _lines(stderr) == [
            f'bisenet fleet: no Ray cluster at {address}: Connection refused']


def test_a_ray_cluster_that_accepts_but_never_answers_fails_within_30_s(tree, silent_head):
    # Through auto and RAY_ADDRESS: no address of the tool's own to probe, only the deadline.
    port = silent_head.getsockname()[1]
    process, began = _tool(tree, '--ray-address', 'auto',
                           env={'RAY_ADDRESS': f'127.0.0.1:{port}'})
    _, stderr = process.communicate(timeout=120)
    took = time.monotonic() - began
    assert process.returncode == 1 and took < 30, took
    assert _lines(stderr) == [
        "bisenet fleet: the Ray cluster this machine's (auto) did not answer within 20 s; "
        'check the address (ray status on the head)']


def test_sigterm_ends_the_tool_within_5_s_while_it_waits_for_a_silent_cluster(
        tree, silent_head):
    port = silent_head.getsockname()[1]
    process, _ = _tool(tree, '--ray-address', f'127.0.0.1:{port}')
    silent_head.settimeout(120)
    silent_head.accept()[0].close()  # the tool's probe: it is joining now
    time.sleep(2)
    process.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    _, stderr = process.communicate(timeout=60)
    took = time.monotonic() - sent
    assert process.returncode == 128 + signal.SIGTERM and took < 5, took
    assert _lines(stderr) == [
        'bisenet fleet: stopped by SIGTERM; a rerun resumes the unfinished bags']


@pytest.mark.parametrize('where, number, said', [
    ('ray', signal.SIGTERM, 'SIGTERM'), ('process', signal.SIGTERM, 'SIGTERM'),
    ('process', signal.SIGINT, 'Ctrl-C')])
def test_a_signal_ends_a_run_within_5_s_in_one_line_and_a_rerun_finishes_it(
        tree, checkpoint, where, number, said):
    _write_bag(tree / 'long' / 'drive', 40)
    # A big network input keeps the one worker inside its task when the signal comes.
    args = [tree / 'long', '-o', tree / 'out', '--model', checkpoint, '--labels-only',
            *SMALL, '--input-size', '512x256']
    on_ray = ['--ray', '--workers', '1'] if where == 'ray' else []
    # Through the front door, as a user runs it.
    process = subprocess.Popen([sys.executable, '-m', 'bisenet_ros', 'fleet', *map(str, args),
                                *on_ray],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    began = time.monotonic()
    while not list((tree / 'out').glob('.*.partial/*/*.mcap')):
        assert process.poll() is None and time.monotonic() - began < 240
        time.sleep(0.05)
    process.send_signal(number)
    sent = time.monotonic()
    _, stderr = process.communicate(timeout=60)
    took = time.monotonic() - sent
    # After the tool's line, CPython may end itself by SIGINT again (-2; a shell shows 130).
    ended = {128 + number, -number} if number == signal.SIGINT else {128 + number}
    assert process.returncode in ended and took < 5, (took, stderr)
    assert _own_lines(stderr) == [
        f'bisenet fleet: stopped by {said}; a rerun resumes the unfinished bags']
    assert not (tree / 'out' / 'drive').exists()
    assert main([*map(str, args)]) == 0
    assert json.loads((tree / 'out' / 'fleet-report.json').read_text())['totals']['done'] == 1


def test_a_folder_an_outputs_metadata_claims_as_its_file_is_not_deleted(tree, checkpoint):
    out = tree / 'out'
    assert _segment(tree / 'p' / 'x', '-o', out, '--model', checkpoint) == 0
    metadata = out / 'x' / 'metadata.yaml'
    info = yaml.safe_load(metadata.read_text())
    info['rosbag2_bagfile_information']['relative_file_paths'].append('y')
    metadata.write_text(yaml.safe_dump(info))
    _write_bag(out / 'x' / 'y', 1)
    assert _segment(tree / 'p' / 'x', '-o', out, '--model', checkpoint) == 1
    assert f'holds {out / "x" / "y"}' in _entry(out, 'x')['error']
    assert (out / 'x' / 'y' / 'metadata.yaml').is_file()


def test_an_output_root_through_a_loop_of_symbolic_links_is_refused(tree, checkpoint, capsys):
    (tree / 'loop').symlink_to(tree / 'loop')
    line = _refused(capsys, tree / 'p' / 'x', '-o', tree / 'loop' / 'out', '--model',
                    checkpoint)
    assert line.endswith(f'{tree / "loop"} is a symbolic link to nothing or a loop')


def test_an_input_that_is_a_loop_of_symbolic_links_is_reported_and_the_others_done(
        tree, checkpoint):
    (tree / 'loop').symlink_to(tree / 'loop')
    assert _segment(tree / 'loop', tree / 'p' / 'x', '-o', tree / 'out', '--model',
                    checkpoint) == 1
    assert _entry(tree / 'out', 'loop')['error'].endswith('a symbolic link to nothing or a loop')
    assert _entry(tree / 'out', 'x')['status'] == 'done'
