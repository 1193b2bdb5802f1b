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
bisenet demo (``make demo``): a camera, the node and a recorder, end to end.

Three processes talk over real DDS on this machine only (LOCALHOST discovery,
a random domain, the Fast DDS large-image profile): a camera publisher
(``bisenet play`` of an input bag; videos, image folders and the generated
scene are first written to one), the segmentation node with the shipped
demonstration model (or ``--model``), and ``bisenet record``. After a bounded
run it writes the output bag and side-by-side PNGs (input | colour | overlay,
with a legend) and prints frames in/out/dropped and processing time.
"""

from datetime import datetime
import itertools
import os
from pathlib import Path
import subprocess
import sys
import time

from bisenet_ros.image_msgs import image_to_rgb
from bisenet_ros.media import bags, inputs
from bisenet_ros.resources import config_path, demo_model_path
from bisenet_ros.tools import samples
from bisenet_ros.tools.arguments import int_within, new_parser, positive_number
from bisenet_ros.tools.processes import local_ros_env, stop_process
import cv2
import numpy as np

IMAGE = 'sensor_msgs/msg/Image'
CAMERA = '/camera'
OUTPUTS = ('labels', 'color', 'overlay')
PROCESSING = 'processing time p50 / p95 (ms)'


def source_frames(source, count):
    """Return (frames, description) for a video, folder, the street samples or a scene."""
    street = samples.street_folder()
    if source is None and street is not None:
        source = street
        desc = f'the street samples in {street}'
    elif source is None:
        return (list(samples.generated_scene(count)),
                f'a generated street scene (no street samples: ${samples.ENV_SHARED} unset)')
    else:
        desc = str(source)
    frames = samples.read_frames(source, count)
    if not frames:
        raise ValueError(f'no frames in {source}')
    frames = [cv2.resize(f, (640, round(640 * f.shape[0] / f.shape[1])))
              if f.shape[1] > 640 else f for f in frames]
    return frames[:count], desc


def write_input_bag(frames, path, fps):
    """Write frames as sensor_msgs/Image (rgb8) on /camera/image_raw at ``fps``."""
    store = bags.typestore()
    header, stamp = store.types['std_msgs/msg/Header'], store.types['builtin_interfaces/msg/Time']
    start = time.time_ns()
    with bags.BagWriter(path) as writer:
        writer.add_topic(f'{CAMERA}/image_raw', IMAGE)
        for index, rgb in enumerate(frames):
            t = start + int(index * 1e9 / fps)
            msg = store.types[IMAGE](
                header=header(stamp=stamp(sec=t // 10**9, nanosec=t % 10**9), frame_id='camera'),
                height=rgb.shape[0], width=rgb.shape[1], encoding='rgb8', is_bigendian=0,
                step=rgb.shape[1] * 3, data=np.ascontiguousarray(rgb).reshape(-1))
            writer.write(f'{CAMERA}/image_raw', t, store.serialize_cdr(msg, IMAGE))


def legend(class_ids, class_names, palette, width):
    """Return an RGB strip naming the classes present with their colours."""
    strip = np.full((28, width, 3), 255, dtype=np.uint8)
    x = 6
    for class_id in class_ids:
        name = class_names[class_id] if class_id < len(class_names) else 'ignore'
        colour = palette[class_id] if class_id < len(palette) else (0, 0, 0)
        (text_w, _), _ = cv2.getTextSize(name, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
        if x + 22 + text_w > width:
            break
        cv2.rectangle(strip, (x, 7), (x + 14, 21), tuple(int(c) for c in colour), -1)
        cv2.putText(strip, name, (x + 18, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1,
                    cv2.LINE_AA)
        x += 30 + text_w
    return strip


def write_panels(bag_path, out_dir, class_names, palette):
    """Write input | colour | overlay PNGs per segmented frame; return how many."""
    by_stamp = {}
    topics = [f'{CAMERA}/image_raw'] + [f'{CAMERA}/{name}' for name in OUTPUTS]
    for topic, _, msg in bags.read_image_messages(bag_path, topics):
        key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        by_stamp.setdefault(key, {})[topic.rsplit('/', 1)[1]] = msg
    written = 0
    for key in sorted(by_stamp):
        parts = by_stamp[key]
        if not {'image_raw', 'color', 'overlay', 'labels'} <= set(parts):
            continue
        names = ('image_raw', 'color', 'overlay')
        panel = np.hstack([image_to_rgb(parts[name]) for name in names])
        ids = np.unique(np.frombuffer(bytes(parts['labels'].data), np.uint8))
        panel = np.vstack([panel, legend(ids, class_names, palette, panel.shape[1])])
        inputs.write_rgb(out_dir / f'frame_{written:03d}.png', panel)
        written += 1
    return written


def last_diagnostics(bag_path):
    """Return the key/value dict of the node's last /diagnostics status, or {}."""
    values = {}
    store = bags.typestore()
    if '/diagnostics' not in bags.read_topics(bag_path):
        return values
    for message in bags.read_messages(bag_path, ['/diagnostics']):
        array = store.deserialize_cdr(message.data, message.msgtype)
        for status in array.status:
            latest = {kv.key: kv.value for kv in status.values}
            # Periods after the last frame have no timings; keep the last that had some.
            if latest.get(PROCESSING, 'n/a') == 'n/a' and values:
                latest[PROCESSING] = values.get(PROCESSING, 'n/a')
            values = latest
    return values


def wait_for_graph(env, timeout):
    """
    Wait until the node and the recorder are connected to every demo topic.

    Checked on the ROS graph (not with sleeps): the node reads the camera topic
    and the recorder every output, so no frame goes unrecorded. (The recorder
    joins the camera topic once the player offers it; the player waits for it.)
    """
    import rclpy
    shared = ('ROS_DOMAIN_ID', 'ROS_AUTOMATIC_DISCOVERY_RANGE', 'FASTDDS_DEFAULT_PROFILES_FILE')
    os.environ.update({k: env[k] for k in shared})
    rclpy.init(args=[])
    watcher = rclpy.create_node('bisenet_demo_watcher')
    wanted = {f'{CAMERA}/image_raw': 1, **{f'{CAMERA}/{n}': 1 for n in OUTPUTS}}
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if all(watcher.count_subscribers(t) >= n for t, n in wanted.items()):
                return True
            rclpy.spin_once(watcher, timeout_sec=0.1)
        return False
    finally:
        watcher.destroy_node()
        rclpy.try_shutdown()


def _new_folder(path):
    """Create and return ``path``, or ``path-2``, ``path-3``... when runs share a second."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for attempt in itertools.count(1):
        candidate = path if attempt == 1 else path.with_name(f'{path.name}-{attempt}')
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue


def main(argv=None, prog='bisenet demo'):
    """Run the demo; return 0 when frames were segmented end to end."""
    parser = new_parser(prog, __doc__)
    parser.add_argument('--input', type=Path, help='video, image folder or rosbag2')
    parser.add_argument('--model', type=Path, help='checkpoint (default: demonstration model)')
    parser.add_argument('--frames', type=int_within(1), default=20, help='frames to publish')
    parser.add_argument('--fps', type=positive_number, default=4.0, help='camera rate')
    parser.add_argument('--output', type=Path, default=Path('out/demo'))
    parser.add_argument('--timeout', type=positive_number, default=240.0)
    args = parser.parse_args(argv)
    try:  # the input is judged before anything is written or started
        is_bag = args.input is not None and inputs.input_kind(args.input) == 'bag'
        frames, desc = (None, f'the bag {args.input}') if is_bag else source_frames(
            args.input, args.frames)
        out_dir = _new_folder(args.output / datetime.now().strftime('%Y%m%d-%H%M%S'))
    except (OSError, ValueError) as exc:
        print(f'{prog}: {exc}', file=sys.stderr)
        return 1
    in_bag = args.input if is_bag else out_dir / 'input_bag'
    if not is_bag:
        write_input_bag(frames, in_bag, args.fps)
    model = args.model or demo_model_path()
    print(f'input: {desc}\nmodel: {model or "none"}'
          + ('' if args.model else ' (shipped demonstration model)'), flush=True)
    env = local_ros_env(config_path('fastdds_large_images_localhost.xml'))
    python = sys.executable
    node = subprocess.Popen(
        [python, '-m', 'bisenet_ros.node', '--ros-args',
         '--params-file', str(config_path('segmentation.yaml')),
         '-r', f'__ns:={CAMERA}', '-r', 'image:=image_raw']
        + (['-p', f'model_path:={model}'] if model else []),
        env=env)
    out_bag = out_dir / 'output_bag'
    record_topics = [f'{CAMERA}/image_raw'] + [f'{CAMERA}/{n}' for n in OUTPUTS] + \
        ['/diagnostics']
    recorder = subprocess.Popen([python, '-m', 'bisenet_ros.tools.record', *record_topics,
                                 '-o', str(out_bag)], env=env)
    started = time.monotonic()
    try:
        if not wait_for_graph(env, args.timeout):
            raise subprocess.TimeoutExpired('bisenet demo graph', args.timeout)
        player = subprocess.run(
            [python, '-m', 'bisenet_ros.tools.play', str(in_bag), '--wait-for-subscribers', '2',
             '--wait-timeout', str(args.timeout)], env=env, timeout=args.timeout)
        time.sleep(3.0)  # the last frames are still in the network and on the wire
    except subprocess.TimeoutExpired:
        player = None
    finally:
        stop_process(recorder)
        node_rc = stop_process(node)
    elapsed = time.monotonic() - started
    if player is None or player.returncode != 0 or not out_bag.exists():
        print(f'bisenet demo: the run failed (player {player and player.returncode}, node '
              f'{node_rc}); see the log above', file=sys.stderr)
        return 1
    from bisenet_ros.checkpoint import load_checkpoint
    _, info = load_checkpoint(model)
    panels = write_panels(out_bag, out_dir / 'frames', info.class_names, info.palette)
    counts = {t.name: t.count for t in bags.read_topics(out_bag).values()}
    diag = last_diagnostics(out_bag)
    print(f'\nframes in {counts.get(f"{CAMERA}/image_raw", 0)}, labels out '
          f'{counts.get(f"{CAMERA}/labels", 0)}, dropped '
          f'{diag.get("frames dropped (newer frame arrived first)", "?")}; processing p50/p95 '
          f'{diag.get(PROCESSING, "?")} ms; {elapsed:.0f} s in all')
    print(f'output bag: {out_bag}\nside-by-side PNGs ({panels}): {out_dir / "frames"}')
    return 0 if panels else 1


if __name__ == '__main__':
    sys.exit(main())
