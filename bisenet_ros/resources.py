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
Find the files the package ships: configs and the demonstration weights.

Weights live inside the Python package (importlib.resources finds them in any
install). Configs live in the repository's config/ and are installed to
share/bisenet_ros/config by both pip (data_files) and colcon; the share
directory is looked up through the ament index when it is available.
"""

from importlib import resources
from pathlib import Path
import sys

PACKAGE = 'bisenet_ros'
DEMO_MODEL = 'bisenetv2_camvid_demo.safetensors'


def demo_model_path():
    """Return the shipped demonstration checkpoint, or None if this install lacks it."""
    path = resources.files(PACKAGE) / 'weights' / DEMO_MODEL
    return Path(str(path)) if path.is_file() else None


def _share_directories():
    try:
        from ament_index_python.packages import get_package_share_directory
        yield Path(get_package_share_directory(PACKAGE))
    except Exception:  # not a ROS environment, or the index lacks the package
        pass
    yield Path(sys.prefix) / 'share' / PACKAGE
    yield Path(__file__).resolve().parents[1]  # a source checkout


def config_path(name):
    """Return the path of config/<name> from the share directory or the source tree."""
    for share in _share_directories():
        candidate = share / 'config' / name
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f'config file {name!r} not found in the bisenet_ros share '
                            'directory or source tree')
