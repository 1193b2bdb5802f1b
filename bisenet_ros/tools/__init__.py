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
Command-line tools (console scripts) of bisenet_ros, over the same core as the node.

Offline ones need no ROS: segment (with segment_bag), segment_fleet (with the
fleet package; Ray only with --ray) and bench_fleet, export, bench, train,
evaluate, info, and the helpers inputs, samples (demo and benchmark frames)
and bags (rosbag2 files through rosbags). The others run ROS processes and
import rclpy: record, play, demo, bench_node and dds_check (with the helper
processes).
"""
