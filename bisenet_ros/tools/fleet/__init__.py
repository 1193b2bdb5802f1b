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
The parts of bisenet fleet: many bags segmented by workers, resumably.

``discovery`` finds the bags and their output names, ``layout`` checks that
no output overlaps another or an input before any work, ``settings`` holds what
a run does (and the identity a finished output is checked against),
``chunks`` splits bags into tasks, ``worker`` segments one task into one bag
file, ``output_bags`` assembles a bag's files and renames it when complete,
``ray_workers`` runs the workers as Ray actors and ``report`` writes the JSON
report. Only ``ray_workers`` imports Ray, and only when a run asks for it.
"""
