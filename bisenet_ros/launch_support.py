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
What both launch files share: node arguments, checks before anything starts, the exit rule.

Imported only by launch files (it needs ``launch`` and ``launch_ros``, which
come with a ROS install). The names and choices come from
``bisenet_ros.node.interface``, the table the node itself validates against.
"""

import difflib
import os
import shutil
import subprocess

from ament_index_python.packages import (get_package_prefix, get_package_share_directory,
                                         PackageNotFoundError)
from bisenet_ros.node.interface import CHOICES, LAUNCH_PARAMETERS, LOG_LEVELS, PACKAGE
from bisenet_ros.node.parameters import given_value_problem
from bisenet_ros.node.transport import profile_problem
from launch.actions import (DeclareLaunchArgument, LogInfo, RegisterEventHandler,
                            SetEnvironmentVariable, Shutdown)
from launch.event_handlers import OnProcessExit
from launch.substitutions import LaunchConfiguration
from launch_ros.parameter_descriptions import ParameterValue

_BOOLEANS = ('true', 'false')
# Fast DDS 3 (Kilted on) reads the first, Fast DDS 2 (Humble, Jazzy) the second. Fast DDS 3
# reads both, and a file named by both is loaded twice and refused: only one is set.
PROFILE_VARIABLES = ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE')
FAST_DDS_2_DISTROS = ('humble', 'iron', 'jazzy')
# Below this, /dev/shm cannot hold a 64 MiB segment for each process of a launch (Docker
# gives 64 MB): the 16 MiB segment of the docker profile is used instead.
SMALL_SHM_BYTES = 512 * 1024 * 1024


class LaunchArgumentError(RuntimeError):
    """A launch argument, or what it names, cannot be used: nothing has been started."""


def declare_node_arguments():
    """Return a DeclareLaunchArgument per node parameter a user tunes per run, plus log_level."""
    actions = []
    for argument, (parameter, kind) in LAUNCH_PARAMETERS.items():
        choices = CHOICES.get(parameter)
        if kind is bool:
            choices = _BOOLEANS
        description = f'node parameter {parameter}; empty: as in params_file'
        actions.append(DeclareLaunchArgument(
            argument, default_value='', description=description,
            **({'choices': ['', *choices]} if choices else {})))
    actions.append(DeclareLaunchArgument(
        'log_level', default_value='info', choices=list(LOG_LEVELS),
        description='log level of the segmentation node'))
    return actions


def node_overrides(arg):
    """Return {parameter: value} for each node argument given (``arg(name)`` reads one)."""
    overrides = {}
    for argument, (parameter, kind) in LAUNCH_PARAMETERS.items():
        text = arg(argument)
        if not text:
            continue
        if kind is str:
            # Typed as a string, so a value is never read as YAML (a path stays a path).
            overrides[parameter] = ParameterValue(text, value_type=str)
            continue
        try:
            value = text == 'true' if kind is bool else kind(text)
        except ValueError:
            raise LaunchArgumentError(
                f'{argument}:={text} is not {"an integer" if kind is int else "a number"}'
            ) from None
        # The node's own check, here: a value it would refuse stops the launch before
        # anything starts (an integer past int64 would reach it as a double).
        problem = given_value_problem(parameter, value)
        if problem:
            raise LaunchArgumentError(f'{argument}:={text}: {problem}')
        overrides[parameter] = value
    return overrides


def check_arguments(context, declared, logger):
    """
    Refuse a misspelt launch argument (close to a declared one) before anything starts.

    Other undeclared names may belong to a launch file that includes this one
    (launch hands its configurations down), so they are only warned about.
    """
    for name in sorted(set(context.launch_configurations) - set(declared)):
        close = difflib.get_close_matches(name, declared, n=1, cutoff=0.75)
        if close:
            raise LaunchArgumentError(f"unknown launch argument '{name}': did you mean "
                                      f"'{close[0]}'? (--show-args lists them)")
        logger.warning(f"launch argument '{name}' is not one of this launch file's: ignored")


def require_file(path, what):
    """Refuse ``path`` unless it is a readable file."""
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        raise LaunchArgumentError(f'{what} {path} is not a readable file')


def require_executable(package, executable, why):
    """Refuse to go on unless ROS package ``package`` provides ``executable``."""
    try:
        prefix = get_package_prefix(package)
    except PackageNotFoundError:
        raise LaunchArgumentError(
            f"{why} needs the ROS package '{package}', which is not installed "
            f'(apt install ros-$ROS_DISTRO-{package.replace("_", "-")})') from None
    if not os.access(os.path.join(prefix, 'lib', package, executable), os.X_OK):
        raise LaunchArgumentError(f"{why} needs '{executable}' of the ROS package '{package}', "
                                  f'which is not in {prefix}/lib/{package}')


def require_command(command, why):
    """Refuse to go on unless ``command`` is on PATH."""
    if shutil.which(command) is None:
        raise LaunchArgumentError(f"{why} needs the '{command}' command, which is not on PATH")


def require_ros2_verb(verb, package, why):
    """
    Refuse to go on unless the ``ros2`` on PATH has ``verb``, which ROS ``package`` adds.

    A ``ros2`` from pip (this package's venv) has no ``bag``: asking it is the
    only way to know before the recorder fails.
    """
    require_command('ros2', why)
    done = subprocess.run(['ros2', verb, '--help'], capture_output=True, timeout=60)
    if done.returncode != 0:
        raise LaunchArgumentError(
            f"{why} needs 'ros2 {verb}', which the ros2 on PATH ({shutil.which('ros2')}) "
            f'lacks (apt install ros-$ROS_DISTRO-{package})')


def end_launch_with(process):
    """
    Return an event handler that ends the launch when ``process`` ends.

    An exit of 0 shuts the launch down normally (status 0). A non-zero exit,
    or death by a signal launch did not send, raises: launch then stops every
    other process and exits with status 1. During a shutdown (Ctrl-C, or
    another process ended it) the exit status is launch's own business.
    """
    def on_exit(event, context):
        if context.is_shutdown:
            return None
        code, name = event.returncode, event.process_name
        if code == 0:
            return Shutdown(reason=f'{name} exited')
        how = f'was killed by signal {-code}' if code < 0 else f'exited with status {code}'
        raise RuntimeError(f'{name} {how}: ending the launch')

    return RegisterEventHandler(OnProcessExit(target_action=process, on_exit=on_exit))


def configuration(context):
    """Return a function that reads one launch argument's value in ``context``."""
    return lambda name: LaunchConfiguration(name).perform(context)


def declare_dds_arguments():
    """Return the launch arguments that choose the Fast DDS profile of every process."""
    return [
        DeclareLaunchArgument(
            'large_images', default_value='true', choices=list(_BOOLEANS),
            description='give every process of this launch a Fast DDS profile with a large '
                        'shared-memory segment, so camera-size images arrive (Fast DDS alone '
                        'loses most best-effort frames over 512 KiB); false: leave DDS as the '
                        'environment configures it'),
        DeclareLaunchArgument(
            'dds_profile', default_value='',
            description='Fast DDS profile (XML) to give instead; empty: a profile already set '
                        'in the environment (FASTDDS_DEFAULT_PROFILES_FILE), else '
                        'config/fastdds_large_images_localhost.xml with LOCALHOST discovery, '
                        'fastdds_large_images_docker.xml where /dev/shm is under 512 MiB, '
                        'else fastdds_large_images.xml'),
    ]


def default_dds_profile(environ, shm_bytes):
    """Return the file name (in config/) of the large-image profile that suits this machine."""
    if shm_bytes is not None and shm_bytes < SMALL_SHM_BYTES:
        return 'fastdds_large_images_docker.xml'
    # ROS_LOCALHOST_ONLY is what Humble reads.
    if (environ.get('ROS_AUTOMATIC_DISCOVERY_RANGE', '').upper() == 'LOCALHOST'
            or environ.get('ROS_LOCALHOST_ONLY') == '1'):
        return 'fastdds_large_images_localhost.xml'
    return 'fastdds_large_images.xml'


def choose_dds_profile(large_images, dds_profile, environ, config_dir, shm_bytes):
    """
    Return (profile path or None to set nothing, one line saying why).

    ``dds_profile`` given wins; then a profile the environment already names;
    ``large_images`` false sets none; else the default for this machine.
    """
    rmw = environ.get('RMW_IMPLEMENTATION', '')
    if rmw and not rmw.startswith('rmw_fastrtps'):
        return None, (f'RMW_IMPLEMENTATION={rmw}: no Fast DDS profile set (large images are '
                      "that middleware's own setting)")
    if dds_profile:
        return dds_profile, f'Fast DDS profile for every process: {dds_profile} (dds_profile)'
    for name in PROFILE_VARIABLES:
        if environ.get(name):
            return None, f'Fast DDS profile from the environment: {name}={environ[name]}'
    if not large_images:
        return None, ('large_images:=false: Fast DDS default transports; images over 512 KiB '
                      'may be lost (bisenet dds-check measures)')
    path = os.path.join(config_dir, default_dds_profile(environ, shm_bytes))
    return path, f'Fast DDS profile for every process: {path} (large_images:=true)'


def _shm_bytes():
    try:
        stat = os.statvfs('/dev/shm')
    except OSError:  # no /dev/shm (not Linux): nothing to size
        return None
    return stat.f_blocks * stat.f_frsize


def profile_variable(environ):
    """Return the variable the Fast DDS of this ROS distribution reads a profile from."""
    fast_dds_2 = environ.get('ROS_DISTRO', '').lower() in FAST_DDS_2_DISTROS
    return PROFILE_VARIABLES[1] if fast_dds_2 else PROFILE_VARIABLES[0]


def dds_profile_actions(context):
    """Return the actions that give every process started after them the chosen profile."""
    arg = configuration(context)
    profile, why = choose_dds_profile(
        arg('large_images') == 'true', arg('dds_profile'), context.environment,
        os.path.join(get_package_share_directory(PACKAGE), 'config'), _shm_bytes())
    if profile:
        require_file(profile, 'dds_profile')
        problem = profile_problem(profile)
        if problem:
            raise LaunchArgumentError(f'dds_profile {profile}: {problem}')
    actions = [LogInfo(msg=why)]
    if profile:
        actions.append(SetEnvironmentVariable(profile_variable(context.environment),
                                              os.path.abspath(profile)))
    return actions
