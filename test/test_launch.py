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
Launch files (read, not run), the RViz configuration and the Fast DDS profiles.

Everything here needs no launch install: the launch files compile, declare
their arguments and take names and choices from the package's one table, the
RViz file shows the three images, the profiles configure the large
shared-memory segment. test_launch_run.py runs the launch files for real.
"""

import importlib.util
from pathlib import Path
import py_compile
import re
import xml.etree.ElementTree as ElementTree

from bisenet_ros.node.interface import CHOICES, LAUNCH_PARAMETERS, LOG_LEVELS, NODE_NAME
from helpers import needs_ros_extra
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
LAUNCH = REPO / 'launch'
CONFIG = REPO / 'config'
LAUNCH_FILES = sorted(LAUNCH.glob('*.launch.py'))
PROFILES = ('fastdds_large_images.xml', 'fastdds_large_images_localhost.xml')
FASTDDS = '{http://www.eprosima.com}'
SEGMENT_SIZE = 64 * 1024 * 1024
SEGMENTATION_ARGUMENTS = {
    *LAUNCH_PARAMETERS, 'namespace', 'image', 'camera_info', 'params_file', 'camera',
    'camera_params_file', 'rviz', 'rviz_config', 'use_sim_time', 'record', 'record_path',
    'large_images', 'dds_profile', 'log_level'}
# The placeholder topics of segmentation.rviz, which segmentation.launch.py remaps.
RVIZ_TOPICS = {'Input': '/bisenet/input', 'Overlay': '/bisenet/overlay',
               'Colour mask': '/bisenet/color'}


def _profile(name):
    return ElementTree.parse(CONFIG / name).getroot()


def _transports(root):
    return {d.findtext(f'{FASTDDS}transport_id'): d
            for d in root.iter(f'{FASTDDS}transport_descriptor')}


# --- always: no launch needed ------------------------------------------------------------------

def test_there_are_the_two_launch_files():
    assert [p.name for p in LAUNCH_FILES] == ['multi_camera.launch.py',
                                              'segmentation.launch.py']


@pytest.mark.parametrize('path', LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_compiles(path, tmp_path):
    py_compile.compile(str(path), cfile=str(tmp_path / 'out.pyc'), doraise=True)


def test_launch_files_start_the_installed_executable_under_its_node_name():
    assert NODE_NAME == 'bisenet_segmentation'
    for path in LAUNCH_FILES:
        text = path.read_text()
        assert 'executable=EXECUTABLE, name=NODE_NAME' in text
        imported = re.search(r'from bisenet_ros\.node\.interface import (\([^)]*\)|.*)', text)
        assert imported and 'NODE_NAME' in imported.group(1)


def test_launch_files_declare_node_arguments_from_the_one_table():
    # No second list of choices: both files declare the node's arguments through
    # launch_support, which reads bisenet_ros.node.interface.
    for path in LAUNCH_FILES:
        text = path.read_text()
        assert '*declare_node_arguments()' in text
        assert 'CHOICES' not in text and "'onnxruntime'" not in text and 'LOG_LEVELS' not in text
    support = (REPO / 'bisenet_ros' / 'launch_support.py').read_text()
    assert 'CHOICES.get(parameter)' in support and 'LOG_LEVELS' in support
    assert 'openvino' in CHOICES['backend'] and 'verbose' not in LOG_LEVELS


def test_rviz_config_shows_input_overlay_and_colour_mask_reliably():
    config = yaml.safe_load((CONFIG / 'segmentation.rviz').read_text())
    displays = [d for d in config['Visualization Manager']['Displays']
                if d['Class'] == 'rviz_default_plugins/Image']
    assert {d['Name']: d['Topic']['Value'] for d in displays} == RVIZ_TOPICS
    assert {d['Topic']['Reliability Policy'] for d in displays} == {'Reliable'}
    assert all(d['Enabled'] for d in displays)
    assert config['Visualization Manager']['Global Options']['Fixed Frame']


def test_rviz_placeholders_are_the_topics_the_launch_file_remaps():
    text = (LAUNCH / 'segmentation.launch.py').read_text()
    for topic in RVIZ_TOPICS.values():
        assert f"'{topic}'" in text


@pytest.mark.parametrize('name', PROFILES)
def test_profile_has_a_64_mib_shared_memory_segment(name):
    shm = [d for d in _transports(_profile(name)).values()
           if d.findtext(f'{FASTDDS}type') == 'SHM']
    assert [int(d.findtext(f'{FASTDDS}segment_size')) for d in shm] == [SEGMENT_SIZE]


@pytest.mark.parametrize('name', PROFILES)
def test_profile_replaces_the_builtin_transports_with_its_own(name):
    root = _profile(name)
    (participant,) = root.iter(f'{FASTDDS}participant')
    assert participant.get('is_default_profile') == 'true'
    rtps = participant.find(f'{FASTDDS}rtps')
    assert rtps.findtext(f'{FASTDDS}useBuiltinTransports') == 'false'
    used = [t.text for t in rtps.iter(f'{FASTDDS}transport_id')]
    transports = _transports(root)
    assert sorted(used) == sorted(transports)
    assert sorted(t.findtext(f'{FASTDDS}type') for t in transports.values()) == ['SHM', 'UDPv4']


def test_shipped_profile_keeps_udp_on_every_interface_for_other_machines():
    (udp,) = [d for d in _transports(_profile(PROFILES[0])).values()
              if d.findtext(f'{FASTDDS}type') == 'UDPv4']
    assert udp.find(f'{FASTDDS}interfaceWhiteList') is None
    assert udp.find(f'{FASTDDS}interfaces') is None


def test_localhost_profile_keeps_udp_on_loopback():
    (udp,) = [d for d in _transports(_profile(PROFILES[1])).values()
              if d.findtext(f'{FASTDDS}type') == 'UDPv4']
    addresses = [a.text for a in udp.iter(f'{FASTDDS}address')]
    assert addresses == ['127.0.0.1']


# --- where launch and launch_ros are installed -------------------------------------------------

def _load(path):
    # launch.actions, not launch: from the repository root, launch/ imports as an empty package.
    needs_ros_extra('launch.actions')
    needs_ros_extra('launch_ros.actions')
    spec = importlib.util.spec_from_file_location(path.name.replace('.', '_'), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_segmentation_launch_description_declares_its_arguments():
    module = _load(LAUNCH / 'segmentation.launch.py')
    description = module.generate_launch_description()
    assert {a.name for a in description.get_launch_arguments()} == SEGMENTATION_ARGUMENTS


def test_node_arguments_take_the_node_parameter_choices():
    module = _load(LAUNCH / 'segmentation.launch.py')
    arguments = {a.name: a for a in module.generate_launch_description().get_launch_arguments()}
    for argument, (parameter, kind) in LAUNCH_PARAMETERS.items():
        expected = (['', *CHOICES[parameter]] if parameter in CHOICES
                    else ['', 'true', 'false'] if kind is bool else [])
        assert list(arguments[argument].choices or []) == expected, argument
    assert list(arguments['log_level'].choices) == list(LOG_LEVELS)


def test_topic_helpers_resolve_like_ros():
    module = _load(LAUNCH / 'segmentation.launch.py')
    assert module._absolute('robot', 'labels') == '/robot/labels'
    assert module._absolute('', 'labels') == '/labels'
    assert module._absolute('robot', '/cam/image') == '/cam/image'
    assert module._sibling('/cam/image_raw', 'camera_info') == '/cam/camera_info'
    assert module._sibling('image', 'camera_info') == 'camera_info'


def test_multi_camera_launch_parses_the_camera_list():
    module = _load(LAUNCH / 'multi_camera.launch.py')
    assert module.parse_cameras('[front, left]') == ['front', 'left']
    assert module.parse_cameras('front,left') == ['front', 'left']
    with pytest.raises(RuntimeError, match='names no camera'):
        module.parse_cameras('[]')
