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
Launch files, the RViz configuration and the Fast DDS profiles.

``launch`` and ``launch_ros`` only come with a ROS 2 install (not from pip),
so the tests that build launch descriptions skip without them. Everything
that can be checked without them always runs: the launch files compile and
declare their arguments, the RViz file shows the three images, the profiles
configure the large shared-memory segment.
"""

import ast
import importlib.util
from pathlib import Path
import py_compile
import xml.etree.ElementTree as ElementTree

from bisenet_ros.node import NODE_NAME
from bisenet_ros.node.parameters import CHOICES
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
    'model', 'backend', 'device', 'namespace', 'image', 'camera_info', 'image_transport',
    'params_file', 'camera', 'camera_params_file', 'rviz', 'rviz_config', 'use_sim_time',
    'record', 'record_path', 'large_images', 'dds_profile', 'log_level'}
# The placeholder topics of segmentation.rviz, which segmentation.launch.py remaps.
RVIZ_TOPICS = {'Input': '/bisenet/input', 'Overlay': '/bisenet/overlay',
               'Colour mask': '/bisenet/color'}


def _declared_arguments(path):
    """Return the names given to DeclareLaunchArgument in ``path``, read from its syntax tree."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if (isinstance(node, ast.Call) and getattr(node.func, 'id', None)
                == 'DeclareLaunchArgument' and isinstance(node.args[0], ast.Constant)):
            names.add(node.args[0].value)
    return names


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


def test_segmentation_launch_declares_every_documented_argument():
    assert _declared_arguments(LAUNCH / 'segmentation.launch.py') == SEGMENTATION_ARGUMENTS


def test_multi_camera_launch_takes_the_camera_list():
    assert {'cameras', 'image_name', 'namespace', 'params_file'} <= _declared_arguments(
        LAUNCH / 'multi_camera.launch.py')


def test_launch_files_start_the_installed_executable_under_its_node_name():
    assert NODE_NAME == 'bisenet_segmentation'
    for path in LAUNCH_FILES:
        text = path.read_text()
        assert "executable='segmentation_node'" in text
        assert 'from bisenet_ros.node import NODE_NAME' in text and 'name=NODE_NAME' in text


def _choices_of(path):
    """Return {argument: choices expression (ast)} of the launch arguments of ``path``."""
    found = {}
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if (isinstance(node, ast.Call) and getattr(node.func, 'id', None)
                == 'DeclareLaunchArgument' and isinstance(node.args[0], ast.Constant)):
            for keyword in node.keywords:
                if keyword.arg == 'choices':
                    found[node.args[0].value] = keyword.value
    return found


def test_launch_choices_are_the_node_parameter_table():
    # '' keeps the params file's value; every other choice is the node's own,
    # read from the package, so the launch files cannot refuse what the node accepts.
    expected = "['', *CHOICES[{name!r}]]"
    for path in LAUNCH_FILES:
        assert 'from bisenet_ros.node.parameters import CHOICES' in path.read_text()
        choices = _choices_of(path)
        shared = set(choices) & set(CHOICES)
        assert {'backend', 'device'} <= shared
        for name in shared:
            assert ast.unparse(choices[name]) == expected.format(name=name), (path.name, name)
    assert 'openvino' in CHOICES['backend']
    log_level = _choices_of(LAUNCH / 'segmentation.launch.py')['log_level']
    assert ast.unparse(log_level) == 'list(LOG_LEVELS)'


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


# --- where launch and launch_ros are installed (a ROS 2 install) --------------------------------

def _load(path):
    # launch.actions, not launch: from the repository root, launch/ imports as an empty package.
    pytest.importorskip('launch.actions', reason='launch comes with a ROS 2 install, not pip')
    pytest.importorskip('launch_ros.actions',
                        reason='launch_ros comes with a ROS 2 install, not pip')
    spec = importlib.util.spec_from_file_location(path.name.replace('.', '_'), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _context(module, **values):
    """Return a LaunchContext holding the launch file's defaults, with ``values`` over them."""
    from launch import LaunchContext
    context = LaunchContext()
    for argument in module.generate_launch_description().get_launch_arguments():
        default = argument.default_value
        # Defaults that point into the installed package are replaced by plain paths.
        context.launch_configurations[argument.name] = (
            ''.join(s.perform(context) for s in default)
            if not any(type(s).__name__ == 'PathJoinSubstitution' for s in default)
            else f'/share/{argument.name}')
    context.launch_configurations.update(values)
    return context


def test_segmentation_launch_description_declares_its_arguments():
    module = _load(LAUNCH / 'segmentation.launch.py')
    description = module.generate_launch_description()
    assert {a.name for a in description.get_launch_arguments()} == SEGMENTATION_ARGUMENTS


def test_segmentation_launch_starts_only_the_node_by_default():
    module = _load(LAUNCH / 'segmentation.launch.py')
    from launch_ros.actions import Node
    actions = module.launch_setup(_context(module))
    assert [(a.node_package, a.node_executable) for a in actions if isinstance(a, Node)] == [
        ('bisenet_ros', 'segmentation_node')]


def test_segmentation_launch_adds_camera_rviz_and_recorder_on_request():
    module = _load(LAUNCH / 'segmentation.launch.py')
    from launch.actions import ExecuteProcess
    from launch_ros.actions import Node
    context = _context(module, camera='usb_cam', rviz='true', record='true',
                       namespace='robot')
    actions = module.launch_setup(context)
    nodes = {(a.node_package, a.node_executable) for a in actions if isinstance(a, Node)}
    assert nodes == {('bisenet_ros', 'segmentation_node'), ('usb_cam', 'usb_cam_node_exe'),
                     ('rviz2', 'rviz2')}
    (record,) = [a for a in actions if type(a) is ExecuteProcess]
    command = [''.join(s.perform(context) for s in part) for part in record.cmd]
    assert command[:3] == ['ros2', 'bag', 'record']
    assert '/robot/labels' in command and '/robot/overlay' in command


def test_topic_helpers_resolve_like_ros():
    module = _load(LAUNCH / 'segmentation.launch.py')
    assert module._absolute('robot', 'labels') == '/robot/labels'
    assert module._absolute('', 'labels') == '/labels'
    assert module._absolute('robot', '/cam/image') == '/cam/image'
    assert module._sibling('/cam/image_raw', 'camera_info') == '/cam/camera_info'
    assert module._sibling('image', 'camera_info') == 'camera_info'


def test_multi_camera_launch_passes_the_camera_list():
    module = _load(LAUNCH / 'multi_camera.launch.py')
    assert module.parse_cameras('[front, left]') == ['front', 'left']
    assert module.parse_cameras('front,left') == ['front', 'left']
    (node,) = module.launch_setup(_context(module))
    assert (node.node_package, node.node_executable) == ('bisenet_ros', 'segmentation_node')
