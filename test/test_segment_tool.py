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


"""bisenet segment: one output per input for images, folders, videos and bags."""

import os
from pathlib import Path
import subprocess
import sys

from bisenet_ros.media import bags
from bisenet_ros.media import inputs
from bisenet_ros.tools.segment import main
import cv2
from helpers import claiming, simulated_class
import numpy as np
import pytest

IMAGE = 'sensor_msgs/msg/Image'
COMPRESSED = 'sensor_msgs/msg/CompressedImage'


@pytest.fixture(scope='module')
def model(small_v2):
    """Return the session's small random-weight V2 checkpoint (input 128x64)."""
    return small_v2


def _frame(seed, height=48, width=80):
    return np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)


def test_an_image_gives_labels_colour_and_overlay_at_its_size(model, tmp_path, capsys):
    inputs.write_rgb(tmp_path / 'street.png', _frame(0, 50, 70))
    assert main([str(tmp_path / 'street.png'), '-o', str(tmp_path / 'out'),
                 '--model', str(model)]) == 0
    labels = cv2.imread(str(tmp_path / 'out' / 'street_labels.png'), cv2.IMREAD_UNCHANGED)
    assert labels.shape == (50, 70) and labels.max() < 19
    for name in ('color', 'overlay'):
        assert cv2.imread(str(tmp_path / 'out' / f'street_{name}.png')).shape == (50, 70, 3)
    assert 'share' in capsys.readouterr().out


def test_a_folder_gives_one_output_per_image(model, tmp_path):
    for i in range(5):
        inputs.write_rgb(tmp_path / 'in' / f'{i:03d}.jpg', _frame(i))
    assert main([str(tmp_path / 'in'), '-o', str(tmp_path / 'out'), '--model', str(model),
                 '--outputs', 'labels', '--batch', '2']) == 0
    assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == [
        f'{i:03d}_labels.png' for i in range(5)]


def _video(path, frames=7, size=(80, 48)):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), 10, size)
    for i in range(frames):
        writer.write(_frame(i, size[1], size[0]))
    writer.release()
    return path


def test_a_video_gives_every_output_asked_for_one_per_frame(model, tmp_path):
    _video(tmp_path / 'drive.mp4', frames=7)
    out = tmp_path / 'out'
    assert main([str(tmp_path / 'drive.mp4'), '-o', str(out), '--model', str(model),
                 '--outputs', 'labels,color,overlay,confidence']) == 0
    for name in ('color', 'overlay'):
        count, _ = inputs.video_properties(out / f'drive_{name}.mp4')
        assert count == 7, name
    for name in ('labels', 'confidence'):
        frames = sorted((out / f'drive_{name}').iterdir())
        assert [p.name for p in frames] == [f'drive_{i:06d}.png' for i in range(7)]
        first = cv2.imread(str(frames[0]), cv2.IMREAD_UNCHANGED)
        assert first.shape == (48, 80) and first.dtype == np.uint8
    labels = cv2.imread(str(out / 'drive_labels' / 'drive_000000.png'), cv2.IMREAD_UNCHANGED)
    assert labels.max() < 19


def test_video_outputs_follow_the_request(model, tmp_path):
    _video(tmp_path / 'drive.mp4', frames=3)
    assert main([str(tmp_path / 'drive.mp4'), '-o', str(tmp_path / 'out'),
                 '--model', str(model), '--outputs', 'labels,color']) == 0
    assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == ['drive_color.mp4',
                                                                    'drive_labels']


def test_an_image_gives_its_confidence_as_mono8(model, tmp_path):
    inputs.write_rgb(tmp_path / 'street.png', _frame(3, 40, 60))
    assert main([str(tmp_path / 'street.png'), '-o', str(tmp_path / 'out'), '--model',
                 str(model), '--outputs', 'confidence']) == 0
    confidence = cv2.imread(str(tmp_path / 'out' / 'street_confidence.png'),
                            cv2.IMREAD_UNCHANGED)
    assert confidence.shape == (40, 60) and confidence.dtype == np.uint8
    # 255 x the max of 19 class probabilities: never below 255 / 19.
    assert confidence.min() >= 255 // 19


def test_a_folder_segments_its_videos_and_lists_an_unreadable_one(model, tmp_path, capsys):
    inputs.write_rgb(tmp_path / 'in' / 'a.png', _frame(0))
    _video(tmp_path / 'in' / 'b.mp4', frames=2)
    (tmp_path / 'in' / 'c.mp4').write_bytes(b'not a video')
    assert main([str(tmp_path / 'in'), '-o', str(tmp_path / 'out'), '--model', str(model),
                 '--outputs', 'labels']) == 1
    assert (tmp_path / 'out' / 'a_labels.png').exists()
    assert len(list((tmp_path / 'out' / 'b_labels').iterdir())) == 2
    err = capsys.readouterr().err
    assert 'skipped' in err and 'c.mp4' in err and 'Traceback' not in err


def test_a_bag_gives_label_topics_with_the_input_headers(model, tmp_path, capsys):
    store = bags.typestore()
    header = store.types['std_msgs/msg/Header']
    stamp = store.types['builtin_interfaces/msg/Time']
    with bags.BagWriter(tmp_path / 'in') as writer:
        writer.add_topic('/front/image_raw', IMAGE)
        writer.add_topic('/left/image/compressed', COMPRESSED)
        for i in range(3):
            frame = _frame(i)
            raw = store.types[IMAGE](
                header=header(stamp=stamp(sec=100 + i, nanosec=7), frame_id='front'),
                height=48, width=80, encoding='rgb8', is_bigendian=0, step=240,
                data=frame.reshape(-1))
            writer.write('/front/image_raw', (100 + i) * 10**9, store.serialize_cdr(raw, IMAGE))
            jpeg = cv2.imencode('.jpg', frame)[1].reshape(-1) if i != 1 else np.zeros(9, np.uint8)
            packed = store.types[COMPRESSED](
                header=header(stamp=stamp(sec=200 + i, nanosec=0), frame_id='left'),
                format='jpeg', data=jpeg)
            writer.write('/left/image/compressed', (100 + i) * 10**9 + 1,
                         store.serialize_cdr(packed, COMPRESSED))
    # The corrupt frame is listed and makes the exit 1; every other frame is done.
    assert main([str(tmp_path / 'in'), '-o', str(tmp_path / 'out'), '--model', str(model)]) == 1
    err = capsys.readouterr().err
    assert f'skipped /left/image/compressed at {101 * 10**9 + 1}: corrupt' in err
    assert '1 input(s) could not be segmented' in err
    topics = bags.read_topics(tmp_path / 'out')
    assert topics['/front/labels'].count == 3 and topics['/front/overlay'].count == 3
    assert topics['/left/image/labels'].count == 2, 'the corrupt frame is skipped, not faked'
    stamps = [(msg.header.stamp.sec, msg.header.frame_id, msg.encoding, msg.height)
              for _, _, msg in bags.read_image_messages(tmp_path / 'out', ['/front/labels'])]
    assert stamps == [(100 + i, 'front', 'mono8', 48) for i in range(3)]


def test_an_unreadable_input_fails_with_one_line(model, tmp_path, capsys):
    (tmp_path / 'notes.txt').write_text('a note')
    assert main([str(tmp_path / 'notes.txt'), '-o', str(tmp_path / 'out'),
                 '--model', str(model)]) == 1
    assert 'not an image, folder, video' in capsys.readouterr().err


@pytest.mark.parametrize('case, link', [
    ('missing', ''), ('dangling', ' (a link to nowhere.png, which leads to nothing)'),
    ('loop', ' (a link to loop_b.png, which leads to nothing)')])
def test_an_input_that_is_not_there_is_refused_before_the_model_loads(
        tmp_path, capsys, case, link):
    (tmp_path / 'dangling.png').symlink_to('nowhere.png')
    (tmp_path / 'loop_a.png').symlink_to('loop_b.png')
    (tmp_path / 'loop_b.png').symlink_to('loop_a.png')
    source = tmp_path / {'missing': 'drive.png', 'dangling': 'dangling.png',
                         'loop': 'loop_a.png'}[case]
    assert main([str(source), '-o', str(tmp_path / 'out'), '--model',
                 str(tmp_path / 'never_opened.pth')]) == 1
    # The model named does not exist either: the input is judged first.
    assert capsys.readouterr().err.splitlines() == [
        f'bisenet segment: {source}: no such file or folder{link}']


@pytest.mark.parametrize('precision, override, reason', [
    ('bf16', 'avx2', f'class {simulated_class()}) has no native bf16'),
    ('fp16', '', 'fp16 on a CPU would be emulated'),
])
def test_a_precision_the_cpu_only_emulates_is_refused_with_the_reason(
        model, tmp_path, precision, override, reason):
    inputs.write_rgb(tmp_path / 'street.png', _frame(0))
    env = dict(os.environ, BISENET_ROS_HARDWARE=override)
    done = subprocess.run(
        [sys.executable, '-m', 'bisenet_ros.tools.segment', str(tmp_path / 'street.png'),
         '-o', str(tmp_path / 'out'), '--model', str(model), '--precision', precision],
        env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert reason in done.stderr and 'use fp32' in done.stderr
    assert 'Traceback' not in done.stderr and not (tmp_path / 'out').exists()


def _bad_inputs(tmp_path):
    """Write a folder with good images around a text file named .png; return the folder."""
    folder = tmp_path / 'in'
    for i in range(4):
        inputs.write_rgb(folder / f'{i:03d}.png', _frame(i))
    (folder / '001b.png').write_text('not an image')
    (folder / '002b.jpg').write_bytes(b'\xff\xd8\xff\xe0garbage')
    return folder


def test_an_unreadable_image_in_a_folder_is_listed_and_the_rest_are_done(
        model, tmp_path, capsys):
    folder = _bad_inputs(tmp_path)
    assert main([str(folder), '-o', str(tmp_path / 'out'), '--model', str(model)]) == 1
    err = capsys.readouterr().err
    for name in ('001b.png', '002b.jpg'):
        assert f'skipped {folder / name}:' in err
    assert '2 input(s) could not be segmented' in err and 'Traceback' not in err
    assert sorted(p.name for p in (tmp_path / 'out').glob('*_labels.png')) == [
        f'{i:03d}_labels.png' for i in range(4)]


@pytest.mark.parametrize('where', ['input', 'inside', 'under_a_file'])
def test_an_output_path_that_cannot_work_is_refused_before_any_work(
        model, tmp_path, capsys, where):
    folder = _bad_inputs(tmp_path)
    (tmp_path / 'a_file').write_text('x')
    output = {'input': folder, 'inside': folder / 'out',
              'under_a_file': tmp_path / 'a_file' / 'out'}[where]
    assert main([str(folder), '-o', str(output), '--model', str(model)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and ('inside it' in err or 'is a file' in err)
    assert not list(folder.glob('*_labels.png'))


def test_an_existing_bag_output_and_wrong_topics_are_refused(model, tmp_path, capsys):
    from bag_helpers import write_camera_bag
    bag = tmp_path / 'in'
    write_camera_bag(bag, 2)
    (tmp_path / 'taken').mkdir()
    assert main([str(bag), '-o', str(tmp_path / 'taken'), '--model', str(model)]) == 1
    assert 'exists already' in capsys.readouterr().err
    for topics in (['/nope'], ['/cam/camera_info']):
        assert main([str(bag), '-o', str(tmp_path / 'out'), '--model', str(model),
                     '--topics', *topics]) == 2
        err = capsys.readouterr().err
        assert f'--topics {topics[0]}: not image topics' in err and 'Traceback' not in err


@pytest.mark.parametrize('case', ['empty_folder', 'bag_without_metadata', 'garbage_video',
                                  'truncated_bag'])
def test_nothing_to_segment_or_a_damaged_input_fails_in_one_line(
        model, tmp_path, capsys, case):
    source = tmp_path / 'src'
    if case == 'empty_folder':
        source.mkdir()
    elif case == 'bag_without_metadata':
        from bag_helpers import write_camera_bag
        source = tmp_path / 'bag'
        write_camera_bag(source, 2)
        (source / 'metadata.yaml').unlink()
    elif case == 'garbage_video':
        source = tmp_path / 'drive.mp4'
        source.write_bytes(b'\x00' * 100)
    else:
        from bag_helpers import write_camera_bag
        write_camera_bag(tmp_path / 'bag', 3)
        source = next((tmp_path / 'bag').glob('*.mcap'))
        source.write_bytes(source.read_bytes()[:200])
    assert main([str(source), '-o', str(tmp_path / 'out'), '--model', str(model)]) == 1
    err = capsys.readouterr().err  # (FFmpeg may print its own lines before ours)
    assert err.splitlines()[-1].startswith('bisenet segment: ') and 'Traceback' not in err


@pytest.mark.parametrize('name', ['bomb.jpg', 'bomb.png', 'bomb.bmp'])
def test_an_image_file_claiming_a_huge_size_is_skipped_unread(model, tmp_path, capsys, name):
    folder = tmp_path / 'in'
    inputs.write_rgb(folder / 'good.png', _frame(1))
    (folder / name).write_bytes(claiming(Path(name).suffix, 16000, 16000))
    assert main([str(folder), '-o', str(tmp_path / 'out'), '--model', str(model)]) == 1
    err = capsys.readouterr().err
    assert f'skipped {folder / name}: absurd size: width=16000 height=16000' in err
    assert (tmp_path / 'out' / 'good_labels.png').exists()
    # The limit is the user's: --max-image-pixels below the good image refuses it too.
    assert main([str(folder), '-o', str(tmp_path / 'out2'), '--model', str(model),
                 '--max-image-pixels', '1000']) == 1
    assert f'skipped {folder / "good.png"}: absurd size' in capsys.readouterr().err


@pytest.mark.parametrize('ext', ['.png', '.jpg', '.bmp', '.ppm', '.webp', '.tiff'])
def test_every_image_format_read_is_sized_from_its_header(tmp_path, ext):
    from bisenet_ros.image_sizes import claimed_size
    path = tmp_path / f'x{ext}'
    inputs.write_rgb(path, _frame(2, 37, 53))
    assert claimed_size(path.read_bytes())[1:] == (53, 37)
    assert inputs.read_rgb(path).shape == (37, 53, 3)
    with pytest.raises(ValueError, match='absurd size'):
        inputs.read_rgb(path, max_pixels=53 * 36)


def test_a_bag_without_image_topics_fails_naming_what_it_has(model, tmp_path, capsys):
    store = bags.typestore()
    with bags.BagWriter(tmp_path / 'in') as writer:
        writer.add_topic('/chatter', 'std_msgs/msg/String')
        writer.write('/chatter', 1, store.serialize_cdr(
            store.types['std_msgs/msg/String'](data='hi'), 'std_msgs/msg/String'))
    assert main([str(tmp_path / 'in'), '-o', str(tmp_path / 'out'), '--model', str(model)]) == 1
    err = capsys.readouterr().err
    assert 'no image topics to segment; it has /chatter' in err and 'Traceback' not in err
