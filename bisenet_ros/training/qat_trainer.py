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
A quantisation-aware fine-tuning run (``bisenet train --qat --model CKPT``).

The same data, loss and schedule as a float run, on the ``--model`` network
with NNCF's quantisers inserted (qat.py says why each choice). It differs from
:class:`Trainer` in four places: fp32 maths, a start checkpoint that must
label the data's classes, no selection on val (val is the held-out split of
the evidence) and an int8 ONNX file with that evidence as its output.
"""

from pathlib import Path

from bisenet_ros.checkpoint.layouts import AUX_PREFIXES
from bisenet_ros.runtime.quantize import default_weight_bits, int8_measurement
from bisenet_ros.training.checkpoints import load_start
from bisenet_ros.training.evidence import measure, write_evidence
from bisenet_ros.training.qat import (calibration_frames, check_class_set, export_with_parent,
                                      float_end_layers, quantize_for_training)
from bisenet_ros.training.trainer import Trainer


class QatTrainer(Trainer):
    """A training run that fine-tunes ``--model`` with int8 quantisers and exports int8 ONNX."""

    OUTPUT_SUFFIX = '.onnx'

    def _precision(self):
        # Fake quantisation under autocast would quantise bf16/fp16 rounding, not what runs.
        return None, False

    def _build_model(self):
        """Return ``(--model with NNCF quantisers, its CheckpointInfo)``."""
        cfg = self.cfg
        if not cfg['model']:
            raise ValueError('--qat fine-tunes a trained network: give it --model CHECKPOINT')
        model, start = load_start(cfg)
        check_class_set(start, cfg)
        bits = cfg['qat_weight_bits']
        self.weight_bits = default_weight_bits() if str(bits) == 'auto' else int(bits)
        self.float_layers = []
        if cfg['qat_float_ends']:
            # The auxiliary heads are not exported: only the inference network's layers count.
            self.float_layers = [name for name in float_end_layers(model, cfg['num_classes'])
                                 if not name.startswith(AUX_PREFIXES)]
        model = quantize_for_training(model, calibration_frames(cfg, start), self.weight_bits,
                                      self.float_layers)
        self.log(f'QAT: NNCF quantisers inserted, {self.weight_bits}-bit weights'
                 + (f', float: {", ".join(self.float_layers)}' if self.float_layers else ''))
        return model, start

    def _evaluates_now(self):
        # Nothing is selected on val: it is the held-out split of the file's evidence.
        return False

    def _complete(self):
        """Write the int8 file and its fp32 parent; measure both on val and store the evidence."""
        cfg = self.cfg
        output = Path(cfg['output'])
        parent = self.out_dir / 'parent_fp32.onnx'
        export_with_parent(self.model, dict(self.metadata(None),
                                            int8_float_layers=list(self.float_layers)),
                           cfg['model'], output, parent, tuple(cfg['input_size']),
                           self.weight_bits)
        if self.val_set is None:
            self.log(f'wrote {output} without evidence (no val split): the int8 gate refuses '
                     'it until bisenet export --check FILE --data ROOT --write measures it')
            return
        evidence = measure(output, parent, self.val_set, cfg['val_split'], cfg['eval_classes'],
                           cfg['threads'])
        meta = write_evidence(output, evidence)
        self.write_metrics({'type': 'qat_evidence', 'iteration': self.iteration,
                            'output': str(output), 'evidence': evidence})
        self.log(f'wrote {output}: {int8_measurement(meta)}')
