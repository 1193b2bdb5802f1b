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
The rosbag2 path of bisenet-segment: image topics in, a new bag out.

The new bag holds each input image topic as stored, plus, per input topic,
``labels`` (mono8 trainIds), ``color`` and ``overlay`` (rgb8) beside it (the
input's last name segment replaced, as the node names its outputs), written at
the input's bag time with the input's header unchanged. Frames that cannot be
decoded are reported and skipped, never silently replaced.
"""

import logging

from bisenet_ros import render
from bisenet_ros.image_msgs import compressed_to_rgb, image_to_rgb, ImageFormatError
from bisenet_ros.runtime.options import DEFAULT_MAX_PIXELS
from bisenet_ros.tools import bags
import numpy as np
from tqdm import tqdm

LOG = logging.getLogger('bisenet_ros.segment')
IMAGE = 'sensor_msgs/msg/Image'


def output_topic(input_topic, name):
    """Return the topic beside ``input_topic`` for output ``name`` (labels, color, ...)."""
    namespace = input_topic.rsplit('/', 1)[0]
    return f'{namespace}/{name}'


def _image_message(store, header, array):
    encoding = 'mono8' if array.ndim == 2 else 'rgb8'
    height, width = array.shape[:2]
    step = width * (1 if array.ndim == 2 else 3)
    return store.types[IMAGE](
        header=header, height=height, width=width, encoding=encoding, is_bigendian=0,
        step=step, data=np.ascontiguousarray(array).reshape(-1))


class TopicChoiceError(ValueError):
    """--topics names a topic the bag lacks or one that holds no images (a usage error)."""

    usage = True


def _chosen_topics(path, summaries, topics):
    images = sorted(t.name for t in summaries.values() if t.msgtype in bags.IMAGE_TYPES)
    if not topics:
        if not images:
            raise ValueError(f'{path}: no image topics to segment; it has '
                             f'{", ".join(sorted(summaries)) or "no topics"}')
        return images
    wrong = [t for t in topics if t not in images]
    if wrong:
        raise TopicChoiceError(f'--topics {" ".join(wrong)}: not image topics of {path}; '
                               f'its image topics are {", ".join(images) or "none"}')
    return list(topics)


def segment_bag(seg, path, out_path, which, alpha, stats, topics=None, failures=None,
                max_pixels=DEFAULT_MAX_PIXELS):
    """
    Segment the image topics of the bag at ``path`` into a new bag; return the count.

    A frame that cannot be decoded is added to ``failures`` as (where, reason)
    and skipped; its input message is still copied.
    """
    store = bags.typestore()
    summaries = bags.read_topics(path)
    chosen = _chosen_topics(path, summaries, topics)
    outputs = {topic: {name: output_topic(topic, name) for name in sorted(which)}
               for topic in chosen}
    clashes = [t for names in outputs.values() for t in names.values() if t in summaries]
    if clashes or len({t for names in outputs.values() for t in names.values()}) \
            < sum(len(names) for names in outputs.values()):
        # Several inputs in one namespace, or outputs already present: keep them apart.
        outputs = {topic: {name: f'{topic}/{name}' for name in sorted(which)}
                   for topic in chosen}
    total = sum(summaries[t].count for t in chosen if t in summaries)
    done = skipped = 0
    with bags.BagWriter(out_path) as writer:
        for topic in chosen:
            summary = summaries[topic]
            writer.add_topic(topic, summary.msgtype, summary.offered_qos)
            for out_topic in outputs[topic].values():
                writer.add_topic(out_topic, IMAGE)
        for message in tqdm(bags.read_messages(path, chosen), total=total, unit='frame'):
            writer.write(message.topic, message.timestamp, message.data)
            msg = store.deserialize_cdr(message.data, message.msgtype)
            try:
                decode = (compressed_to_rgb if message.msgtype.endswith('CompressedImage')
                          else image_to_rgb)
                rgb = decode(msg, max_pixels)
            except ImageFormatError as exc:
                skipped += 1
                if failures is not None:
                    failures.append((f'{message.topic} at {message.timestamp}', str(exc)))
                continue
            labels = seg.segment([rgb])[0].labels
            stats.add(labels)
            products = render.render_outputs(rgb, labels, seg.lut, which, alpha)
            for name, out_topic in outputs[message.topic].items():
                out_msg = _image_message(store, msg.header, products[name])
                data = store.serialize_cdr(out_msg, IMAGE)
                writer.write(out_topic, message.timestamp, data)
            done += 1
    if skipped:
        LOG.warning('%d of %d frames could not be decoded and were skipped', skipped, total)
    return done
