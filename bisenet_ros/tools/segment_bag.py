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
The rosbag2 path of bisenet segment: image topics in, a new bag out.

The new bag holds each input image topic as stored, plus, per input topic,
``labels`` (mono8 trainIds), ``color`` and ``overlay`` (rgb8) beside it (the
input's last name segment replaced, as the node names its outputs), written at
the input's bag time with the input's header unchanged. Frames that cannot be
decoded are reported and skipped, never silently replaced.
"""

import logging

from bisenet_ros import render
from bisenet_ros.image_msgs import compressed_to_rgb, image_to_rgb, ImageFormatError
from bisenet_ros.media import bags
from bisenet_ros.runtime.options import DEFAULT_MAX_PIXELS
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


class BagSegmentation:
    """
    The plan for one input bag: which image topics are segmented and where each output goes.

    ``which`` names the outputs (labels, color, overlay); ``topics`` the image
    topics to segment (default: all). Built from the bag's topic summaries,
    so a wrong ``topics`` is refused before anything is read or written.
    """

    def __init__(self, path, which, topics=None):
        """Read the bag's topics and choose the inputs and their output topics."""
        self.path = path
        self.which = sorted(which)
        self.summaries = bags.read_topics(path)
        self.topics = _chosen_topics(path, self.summaries, topics)
        self.outputs = {topic: {name: output_topic(topic, name) for name in self.which}
                        for topic in self.topics}
        names = [t for names in self.outputs.values() for t in names.values()]
        if len(set(names)) < len(names) or any(t in self.summaries for t in names):
            # Several inputs in one namespace, or outputs already present: keep them apart.
            self.outputs = {topic: {name: f'{topic}/{name}' for name in self.which}
                            for topic in self.topics}

    @property
    def frames(self):
        """Return the number of image messages on the chosen topics."""
        return sum(self.summaries[t].count for t in self.topics)

    def add_topics(self, writer, copy_inputs=True):
        """Declare the output topics (and the input image topics when copied) in ``writer``."""
        for topic in self.topics:
            if copy_inputs:
                summary = self.summaries[topic]
                writer.add_topic(topic, summary.msgtype, summary.offered_qos)
            for out_topic in self.outputs[topic].values():
                writer.add_topic(out_topic, IMAGE)

    def messages(self, start=None, stop=None):
        """Yield each image message (a bags.BagMessage) in bag-time order, from start to stop."""
        return bags.read_messages(self.path, self.topics, start, stop)

    @staticmethod
    def decode(message, max_pixels=DEFAULT_MAX_PIXELS):
        """
        Return (header, rgb) of an image message; raise ImageFormatError if it has none.

        The image is sized from its header before decoding (``max_pixels``).
        """
        store = bags.typestore()
        try:
            msg = store.deserialize_cdr(message.data, message.msgtype)
        except Exception as exc:  # rosbags raises what its parser meets in damaged bytes
            raise ImageFormatError(f'not a valid {message.msgtype} message ({exc})') from None
        decode = (compressed_to_rgb if message.msgtype.endswith('CompressedImage')
                  else image_to_rgb)
        return msg.header, decode(msg, max_pixels)

    def output_messages(self, seg, topic, header, rgb, result, alpha):
        """Return [(output topic, CDR bytes)] of one SegmentationResult, each with ``header``."""
        store = bags.typestore()
        products = render.render_outputs(rgb, result.labels, seg.lut, self.which, alpha,
                                         result.confidence)
        return [(out_topic, store.serialize_cdr(_image_message(store, header, products[name]),
                                                IMAGE))
                for name, out_topic in self.outputs[topic].items()]


def segment_bag(seg, path, out_path, which, alpha, stats, topics=None, failures=None,
                max_pixels=DEFAULT_MAX_PIXELS):
    """
    Segment the image topics of the bag at ``path`` into a new bag; return the count.

    A frame that cannot be decoded is added to ``failures`` as (where, reason)
    and skipped; its input message is still copied.
    """
    plan = BagSegmentation(path, which, topics)
    done = skipped = 0
    with bags.BagWriter(out_path) as writer:
        plan.add_topics(writer)
        for message in tqdm(plan.messages(), total=plan.frames, unit='frame'):
            writer.write(message.topic, message.timestamp, message.data)
            try:
                header, rgb = plan.decode(message, max_pixels)
            except ImageFormatError as exc:
                skipped += 1
                if failures is not None:
                    failures.append((f'{message.topic} at {message.timestamp}', str(exc)))
                continue
            result = seg.segment([rgb])[0]
            stats.add(result.labels)
            for out_topic, data in plan.output_messages(seg, message.topic, header, rgb, result,
                                                        alpha):
                writer.write(out_topic, message.timestamp, data)
            done += 1
    if skipped:
        LOG.warning('%d of %d frames could not be decoded and were skipped', skipped,
                    plan.frames)
    return done
