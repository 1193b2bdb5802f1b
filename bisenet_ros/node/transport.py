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
What the node says about DDS delivering its images: frames lost on the wire, and why.

Fast DDS's default transports carry a sample of up to its 512 KiB shared-memory
segment through shared memory; a larger image goes over fragmented UDP, where a
best-effort subscription such as this node's loses most of them (measured: 0 of
30 rgb8 640x360 frames at 10 Hz arrived; 480x360, 518 400 bytes, all arrived).
The RMW reports each lost sample to the subscription (``message_lost``); the
node counts them per camera, and this module words the warning and the note at
configure. Plain functions of the environment, tested without DDS.
"""

import os
from xml.etree import ElementTree

# Fast DDS 3 reads the first, Fast DDS 2 (Humble, Jazzy) the second.
PROFILE_VARIABLES = ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE')
# Fast DDS loads these from the working directory when no variable names a profile.
PROFILE_FILES = ('DEFAULT_FASTDDS_PROFILES.xml', 'DEFAULT_FASTRTPS_PROFILES.xml')
PROFILE = 'config/fastdds_large_images.xml'
FIX = (f'give the camera driver and this node the large-image Fast DDS profile '
       f'({PROFILE} in FASTDDS_DEFAULT_PROFILES_FILE; the launch files set it by default), '
       'and measure with `bisenet dds-check`')


def profile_problem(path):
    """
    Return why ``path`` is not a Fast DDS XML profile, or None.

    Fast DDS ignores a file it cannot read and runs on its defaults, without a
    word: a process started with it would not be configured as it was told.
    """
    try:
        root = ElementTree.parse(path).getroot()
    except (OSError, ElementTree.ParseError) as exc:
        return f'not a readable XML file ({exc})'
    if root.tag.rpartition('}')[2] not in ('dds', 'profiles'):
        return f'not a Fast DDS profile (its root is <{root.tag}>, not <dds> or <profiles>)'
    return None


def is_fast_dds(rmw_identifier):
    """Return whether ``rmw_identifier`` (as rclpy names the RMW) is Fast DDS."""
    return rmw_identifier.startswith('rmw_fastrtps')


def large_data_setting(environ, cwd):
    """Return the environment's Fast DDS setting for large data in words, or None."""
    for name in PROFILE_VARIABLES:
        if environ.get(name):
            return f'{name}={environ[name]}'
    builtin = environ.get('FASTDDS_BUILTIN_TRANSPORTS', '')
    if builtin:
        return f'FASTDDS_BUILTIN_TRANSPORTS={builtin}'
    for name in PROFILE_FILES:
        if os.path.isfile(os.path.join(cwd, name)):
            return os.path.join(cwd, name)
    return None


def default_transport_note(rmw_identifier, environ, cwd):
    """Return the configure-time line on what Fast DDS's defaults deliver, or None."""
    if not is_fast_dds(rmw_identifier) or large_data_setting(environ, cwd):
        return None
    return ('Fast DDS runs on its default transports here: images up to 512 KiB a message '
            '(rgb8 480x360) arrive through shared memory; larger ones (rgb8 640x360 and up) go '
            'over fragmented UDP, where best-effort frames are mostly lost. For camera-size '
            f'images {FIX}')


def lost_warning(topic, count, rmw_identifier):
    """Return the one warning for the first ``count`` frames lost on the wire on ``topic``."""
    text = (f'{topic}: {count} frame{"s" if count != 1 else ""} lost on the wire before '
            f'reaching this node ({rmw_identifier} reports it; counted in /diagnostics). ')
    if is_fast_dds(rmw_identifier):
        return text + f'Images over 512 KiB get lost on Fast DDS defaults: {FIX}'
    return text + ("Check the middleware's settings for large messages (`bisenet dds-check` "
                   'measures)')
