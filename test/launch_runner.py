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
Run a launch file as ``ros2 launch`` does, without ros2cli (not on pip).

    python -m launch_runner FILE [name:=value ...]

ros2launch's own API includes the file with the arguments given, runs the
LaunchService and exits with its status.
"""

import signal
import sys

from ros2launch.api import launch_a_launch_file

if __name__ == '__main__':
    # A test run started as a background job inherits SIGINT ignored, and launch then
    # never sees the Ctrl-C the tests send; `ros2 launch` in a terminal always has it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(launch_a_launch_file(launch_file_path=sys.argv[1],
                                  launch_file_arguments=sys.argv[2:], noninteractive=True))
