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
One training run: data, model, optimiser, schedule, evaluation and checkpoints.

The run is iteration based with a poly schedule; ``time_budget_s`` additionally
stretches the schedule over wall time, so that a run on a shared CPU still
finishes its decay on time. ``out_dir`` receives ``last.pth`` (resumable),
``best.pth`` and ``metrics.jsonl``; the best model is also written to ``output``.
Quantisation-aware runs are ``QatTrainer`` (qat_trainer.py).
"""

import contextlib
import json
import os
from pathlib import Path
import random
import sys
import time
from types import MappingProxyType

from bisenet_ros.runtime import Segmenter
from bisenet_ros.runtime.config import RuntimeConfig
from bisenet_ros.training.checkpoints import (build_training_model, describe, eval_state_dict,
                                              export_best)
from bisenet_ros.training.config import check_writable, pick_autocast, pick_device
from bisenet_ros.training.datasets import build_dataset
from bisenet_ros.training.evaluation import evaluate, segmenter_predictor
from bisenet_ros.training.loss import OhemCELoss
from bisenet_ros.training.metrics import summarize
from bisenet_ros.training.schedule import poly_warmup_factor
from bisenet_ros.training.transforms import train_transform
import numpy as np
import torch


def param_groups(model, weight_decay):
    """Decay conv/linear weights only: decaying BN affine terms and biases only hurts."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 else no_decay).append(p)
    return [{'params': decay, 'weight_decay': weight_decay},
            {'params': no_decay, 'weight_decay': 0.0}]


def percent(fraction):
    """Return a metric as bisenet evaluate prints it: percent, two decimals."""
    return f'{100 * fraction:.2f}'


# The run's progress, stored in last.pth as it is.
PROGRESS = ('iteration', 'elapsed', 'warmup_elapsed', 'best_miou', 'best_summary', 'epoch',
            'order')


class Trainer:
    """One training run: data, model, optimiser, schedule, evaluation and checkpoints."""

    # What ``output`` receives: the best weights as a project checkpoint.
    OUTPUT_SUFFIX = '.safetensors'

    def __init__(self, cfg, command, log=print):
        """Check where the run writes, then build its model, data and optimiser from ``cfg``."""
        # A read-only copy: the settings stay as asked; what they resolve to is an attribute.
        self.cfg = cfg = MappingProxyType(dict(cfg))
        self.command = command
        self.log = log
        check_writable(cfg['out_dir'], '--out-dir')
        check_writable(cfg['output'], '--output', self.OUTPUT_SUFFIX)
        self.out_dir = Path(cfg['out_dir'])
        self.device = pick_device(cfg['device'])
        torch.set_num_threads(int(cfg['threads']))
        self.autocast_dtype, self.channels_last = self._precision()
        _seed_everything(cfg['seed'])
        self.model, start = self._build_model()
        # What the model is, for the runtime at validation and for its checkpoints.
        self.info = describe(cfg, start)
        self.model.to(self.device)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.rng = np.random.default_rng(cfg['seed'])
        self.train_set = build_dataset(
            cfg['dataset'], cfg['data'], cfg['train_split'],
            train_transform(cfg['crop_size'], cfg['scales'], cfg['jitter'], self.info.mean,
                            self.info.std, self.rng),
            cache=cfg['cache'])
        self.val_set = None
        if cfg['val_split']:
            self.val_set = build_dataset(cfg['dataset'], cfg['data'], cfg['val_split'],
                                         cache=cfg['cache'])
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.criterion = OhemCELoss(cfg['ohem_thresh'])
        self.optimizer = torch.optim.SGD(param_groups(self.model, cfg['weight_decay']),
                                         lr=cfg['lr'], momentum=cfg['momentum'])
        self.scaler = torch.amp.GradScaler('cuda', enabled=self.autocast_dtype == torch.float16)
        self.iteration, self.epoch, self.order = 0, 0, []
        self.elapsed, self.warmup_elapsed = 0.0, None
        self.best_miou, self.best_summary = -1.0, None
        self.stop_requested = False

    def _precision(self):
        """Return (autocast dtype or None, channels_last) for this run's settings."""
        dtype = pick_autocast(self.cfg['amp'], self.device)
        channels_last = self.cfg['channels_last']
        if channels_last == 'auto':
            # Measured on CPU (V2 train step): NHWC is ~15 % faster with bf16 but ~20 %
            # slower in fp32, so it follows the autocast choice.
            channels_last = dtype is not None
        return dtype, bool(channels_last)

    def _build_model(self):
        """Return ``(model with aux heads, CheckpointInfo of --model or None)``."""
        return build_training_model(self.cfg, self.log)

    def state(self):
        """Return everything ``resume`` needs."""
        return dict({name: getattr(self, name) for name in PROGRESS},
                    model=self.model.state_dict(), optimizer=self.optimizer.state_dict(),
                    scaler=self.scaler.state_dict(), config=dict(self.cfg),
                    rng=self.rng.bit_generator.state, torch_rng=torch.get_rng_state())

    def save_last(self):
        """Write ``last.pth`` atomically, so an interruption mid-write keeps the old one."""
        tmp = self.out_dir / 'last.pth.tmp'
        torch.save(self.state(), tmp)
        os.replace(tmp, self.out_dir / 'last.pth')

    def resume(self, path):
        """Restore a ``last.pth`` written by :meth:`save_last`."""
        state = torch.load(path, map_location=self.device, weights_only=False)
        self.model.load_state_dict(state['model'])
        self.optimizer.load_state_dict(state['optimizer'])
        self.scaler.load_state_dict(state['scaler'])
        for name in PROGRESS:
            setattr(self, name, state[name])
        self.rng.bit_generator.state = state['rng']
        torch.set_rng_state(state['torch_rng'])
        best = percent(self.best_miou) if self.best_summary else 'none yet'
        self.log(f'resumed {path} at iteration {self.iteration} '
                 f'({self.elapsed / 60:.1f} min trained, best val mIoU {best})')

    def lr_factor(self):
        """Return the LR multiplier: poly over iterations, or over time when that is later."""
        cfg = self.cfg
        factor = poly_warmup_factor(self.iteration, cfg['max_iter'], cfg['warmup_iter'],
                                    cfg['warmup_ratio'], cfg['power'])
        if self.iteration >= cfg['warmup_iter'] and self.time_progress() > 0:
            factor = min(factor, (1.0 - self.time_progress()) ** cfg['power'])
        return factor

    def time_progress(self):
        """Return the fraction of the post-warmup time budget used (0 when unbudgeted)."""
        budget = self.cfg['time_budget_s']
        if not budget or self.warmup_elapsed is None:
            return 0.0
        span = max(1.0, budget - self.warmup_elapsed)
        return min(1.0, (self.elapsed - self.warmup_elapsed) / span)

    def finished(self):
        """Whether the schedule has run out (iterations or time)."""
        return self.iteration >= self.cfg['max_iter'] or self.time_progress() >= 1.0

    def next_batch(self):
        """Return one (images, labels) batch, reshuffling at each epoch end."""
        bs = self.cfg['batch']
        if len(self.order) < bs:
            self.order = list(self.rng.permutation(len(self.train_set)))
            self.epoch += 1
        indices, self.order = self.order[:bs], self.order[bs:]
        images, labels = zip(*(self.train_set[int(i)] for i in indices))
        images = torch.stack(images).to(self.device, non_blocking=True)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images, torch.stack(labels).to(self.device, non_blocking=True)

    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def train_step(self):
        """Run one iteration; return the main and total loss values."""
        self.model.train()
        lr = self.cfg['lr'] * self.lr_factor()
        for group in self.optimizer.param_groups:
            group['lr'] = lr
        images, labels = self.next_batch()
        with self._autocast():
            outputs = self.model(images)
        if not isinstance(outputs, (tuple, list)):
            outputs = (outputs,)
        main = self.criterion(outputs[0], labels)
        total = main
        for aux in outputs[1:]:
            total = total + self.cfg['aux_weight'] * self.criterion(aux, labels)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.iteration += 1
        return float(main.detach()), float(total.detach()), lr

    def validate(self):
        """Return the metric summary of the current model on the validation split."""
        cfg = self.cfg
        # The runtime's own path, as users will run the model; logits are upsampled
        # before the argmax, as the reference evaluation does.
        segmenter = Segmenter.from_model(self.model, self.info, RuntimeConfig(
            device=self.device.type,
            precision='bf16' if self.autocast_dtype == torch.bfloat16 else 'fp32',
            label_resize='logits'), channels_last=self.channels_last)
        try:
            cm = evaluate(segmenter_predictor(segmenter), self.val_set,
                          cfg['num_classes'])
        finally:
            self.model.train()
        return summarize(cm, list(self.info.class_names), cfg['eval_classes'])

    def metadata(self, summary):
        """Return the checkpoint metadata of the model being trained."""
        cfg = self.cfg
        return dict(self.info.to_metadata(), **{
            'training': {
                'data': {'dataset': cfg['dataset'], 'root': str(cfg['data']),
                         'train_split': cfg['train_split'], 'val_split': cfg['val_split'],
                         'train_frames': len(self.train_set),
                         'val_frames': len(self.val_set) if self.val_set else 0},
                'recipe': dict({k: cfg[k] for k in (
                    'model', 'crop_size', 'scales', 'jitter', 'batch', 'max_iter',
                    'time_budget_s', 'lr', 'momentum', 'weight_decay', 'warmup_iter',
                    'warmup_ratio', 'power', 'aux_weight', 'ohem_thresh', 'amp', 'seed')},
                    channels_last=self.channels_last),
                'command': self.command,
                'iterations': self.iteration,
                'epochs': self.epoch,
                'time_s': round(self.elapsed, 1),
                'device': str(self.device),
                'autocast': str(self.autocast_dtype).replace('torch.', ''),
                'val_miou': summary['miou'] if summary else None,
                'val_pixel_accuracy': summary['pixel_accuracy'] if summary else None,
                'val_classes': summary['classes'] if summary else None,
                'val_per_class_iou': ({r['name']: r['iou'] for r in summary['per_class']}
                                      if summary else None),
            },
        })

    def save_best(self, summary):
        """Write best.pth and the project checkpoint at ``output``."""
        meta = self.metadata(summary)
        weights = eval_state_dict(self.model)
        torch.save({'model': weights, 'metadata': meta}, self.out_dir / 'best.pth')
        try:
            export_best(self.out_dir / 'best.pth', self.cfg['output'], self.log)
        except Exception as exc:  # noqa: B902 - a failed export must not end training
            self.log(f'could not write {self.cfg["output"]} ({exc!r}); best.pth is kept, '
                     'convert it later with --export-best')

    def write_metrics(self, record):
        """Append one JSON line to metrics.jsonl."""
        with open(self.out_dir / 'metrics.jsonl', 'a') as f:
            f.write(json.dumps(record) + '\n')

    def run(self, max_process_iters=None):
        """Train until the schedule ends (or a stop is requested); return the best summary."""
        from tqdm import tqdm
        cfg = self.cfg
        start_iter = self.iteration
        bar = tqdm(total=cfg['max_iter'], initial=self.iteration, dynamic_ncols=True,
                   mininterval=5.0, file=sys.stdout)
        window = []
        try:
            while not self.finished() and not self.stop_requested:
                t0 = time.perf_counter()
                main, total, lr = self.train_step()
                dt = time.perf_counter() - t0
                window.append((main, total, dt))
                bar.update(1)
                bar.set_postfix(loss=f'{total:.3f}', lr=f'{lr:.4f}',
                                best=percent(max(self.best_miou, 0)))
                if self.iteration % cfg['log_every'] == 0:
                    self._log_train(window, lr)
                    window = []
                if self._evaluates_now():
                    self._evaluate_and_keep()
                # Wall time including evaluation, so a time budget covers the whole run.
                self.elapsed += time.perf_counter() - t0
                if self.warmup_elapsed is None and self.iteration >= cfg['warmup_iter']:
                    self.warmup_elapsed = self.elapsed
                if (max_process_iters is not None
                        and self.iteration - start_iter >= max_process_iters):
                    break
        except KeyboardInterrupt:
            self.stop_requested = True
        finally:
            bar.close()
        if self.stop_requested:
            self.save_last()
            self.log(f'interrupted at iteration {self.iteration}; state in '
                     f'{self.out_dir / "last.pth"} (continue with --resume)')
            return self.best_summary
        if window:
            self._log_train(window, lr)
        self.save_last()
        if self.finished():
            self._complete()
        return self.best_summary

    def _evaluates_now(self):
        """Whether to validate, keeping the best weights, after this iteration."""
        return self.val_set is not None and self.iteration % self.cfg['eval_every'] == 0

    def _complete(self):
        """End a finished schedule: validate the last weights unless that just happened."""
        if self.val_set is not None and not self._evaluates_now():
            self._evaluate_and_keep()

    def _log_train(self, window, lr):
        n = len(window)
        secs = sum(w[2] for w in window)
        record = {'type': 'train', 'iteration': self.iteration, 'epoch': self.epoch,
                  'loss_main': sum(w[0] for w in window) / n,
                  'loss_total': sum(w[1] for w in window) / n, 'lr': lr,
                  'it_per_s': n / secs if secs else None,
                  'img_per_s': n * self.cfg['batch'] / secs if secs else None,
                  'elapsed_s': round(self.elapsed, 1), 'time': time.time()}
        self.write_metrics(record)

    def _evaluate_and_keep(self):
        t0 = time.perf_counter()
        summary = self.validate()
        secs = time.perf_counter() - t0
        improved = summary['miou'] > self.best_miou
        record = {'type': 'val', 'iteration': self.iteration, 'epoch': self.epoch,
                  'miou': summary['miou'], 'pixel_accuracy': summary['pixel_accuracy'],
                  'per_class_iou': {r['name']: r['iou'] for r in summary['per_class']},
                  'best': improved, 'eval_s': round(secs, 1),
                  'elapsed_s': round(self.elapsed, 1), 'time': time.time()}
        self.write_metrics(record)
        self.log(f'\niteration {self.iteration}: val mIoU {percent(summary["miou"])}  '
                 f'pixel accuracy {percent(summary["pixel_accuracy"])}  ({secs:.0f} s'
                 + (', best)' if improved else ')'))
        if improved:
            self.best_miou = summary['miou']
            self.best_summary = summary
            self.save_best(summary)
        self.save_last()


def _seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
