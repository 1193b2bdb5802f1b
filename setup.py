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
Packaging for pip (venv, no ROS install) and colcon (ament_python) alike.

Dependencies are ranges so a user's own CUDA or Jetson torch is kept; the exact
versions we test with live in constraints.txt, which the Makefile applies.
"""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = 'bisenet_ros'

EXTRAS = {
    'onnx': ['onnxruntime-gpu>=1.17', 'onnx>=1.15', 'onnxscript>=0.1'],
    'openvino': ['openvino>=2024.0'],
    'bags': ['rosbags>=0.10', 'mcap>=1.1', 'mcap-ros2-support>=0.5'],
    # ROS 2 from PyPI wheels, for machines without a ROS install.
    'ros': ['ros-rclpy>=9', 'ros-sensor-msgs>=5', 'ros-std-msgs>=5',
            'ros-builtin-interfaces>=2', 'ros-diagnostic-msgs>=5', 'ros-rcl-interfaces>=2',
            'ros-lifecycle-msgs>=2', 'ros-rmw-fastrtps-cpp>=9', 'ros-ament-index-python>=1'],
    # Fleet runs on a Ray cluster; ray[client] also joins one remotely (ray://head:10001).
    'cluster': ['ray[client]>=2.9'],
    # Quantisation-aware fine-tuning (bisenet-train --qat).
    'qat': ['nncf>=3.0'],
    'test': ['pytest>=7', 'ros-ament-flake8>=0.17', 'ros-ament-pep257>=0.17',
             'flake8-quotes', 'flake8-import-order', 'flake8-docstrings', 'flake8-builtins',
             'flake8-comprehensions', 'catkin-pkg>=1.0', 'colcon-common-extensions>=0.3'],
}
_BUNDLED = ('onnx', 'openvino', 'bags', 'ros', 'cluster', 'qat')
EXTRAS['all'] = sorted({req for name in _BUNDLED for req in EXTRAS[name]})

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    package_data={PACKAGE: ['weights/*.safetensors', 'weights/*.onnx', 'weights/*.md',
                            'weights/LICENSE', 'class_tables/*.csv']},
    data_files=[
        ('share/ament_index/resource_index/packages', [f'resource/{PACKAGE}']),
        (f'share/{PACKAGE}', ['package.xml']),
        (f'share/{PACKAGE}/launch', glob('launch/*.launch.py')),
        (f'share/{PACKAGE}/config', glob('config/*.yaml') + glob('config/*.xml')
         + glob('config/*.rviz')),
    ],
    python_requires='>=3.10',
    install_requires=[
        'torch>=2.1',
        'numpy>=1.24',
        'opencv-python-headless>=4.8',
        'safetensors>=0.4',
        'PyYAML>=6.0',
        'tqdm>=4.60',
    ],
    extras_require=EXTRAS,
    zip_safe=True,
    maintainer='bisenet_ros maintainers',
    maintainer_email='maintainers@bisenet-ros.example.org',
    description='BiSeNet V1/V2 semantic segmentation node for ROS 2',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'segmentation_node = bisenet_ros.node:main',
            'bisenet = bisenet_ros.cli:main',
        ],
    },
)
