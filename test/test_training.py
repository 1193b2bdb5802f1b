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

"""Tests of the training and evaluation code (losses, metrics, transforms, the loop)."""

from pathlib import Path

from bisenet_ros.models import build_model
from bisenet_ros.training.datasets import (build_dataset, camvid_to_train_id_lut,
                                           CAMVID_TRAIN_IDS)
from bisenet_ros.training.evaluation import evaluate
from bisenet_ros.training.loss import ohem_cross_entropy
from bisenet_ros.training.metrics import confusion_matrix, iou_from_confusion, mean_iou
from bisenet_ros.training.metrics import pixel_accuracy, summarize
from bisenet_ros.training.schedule import poly_warmup_factor
from bisenet_ros.training.transforms import train_transform
import numpy as np
import pytest
import torch

SHARED = Path(__file__).resolve().parents[2] / 'shared'
CAMVID = SHARED / 'datasets' / 'camvid'
needs_camvid = pytest.mark.skipif(not (CAMVID / 'train.txt').exists(),
                                  reason=f'CamVid not found at {CAMVID}')


def _mini_camvid(tmp_path, n_train=4, n_val=2):
    """Write list files naming a few real CamVid frames (absolute paths) under tmp_path."""
    lines = (CAMVID / 'train.txt').read_text().split('\n')
    lines = [line for line in lines if line.strip()]
    for split, chosen in (('train', lines[:n_train]), ('val', lines[-n_val:])):
        text = '\n'.join(' '.join(str(CAMVID / f) for f in line.split()) for line in chosen)
        (tmp_path / f'{split}.txt').write_text(text + '\n')
    return tmp_path


def _train_config(tmp_path, **overrides):
    from bisenet_ros.training.config import DEFAULTS
    cfg = dict(DEFAULTS, data_root=str(_mini_camvid(tmp_path)), out_dir=str(tmp_path / 'run'),
               crop_size=[96, 64], scales=[0.3, 0.4], input_size=[128, 96], batch_size=2,
               max_iter=2, eval_every=1000, warmup_iter=1, log_every=1, amp='off',
               eval_classes=list(CAMVID_TRAIN_IDS), cache=True, threads=1)
    cfg.update(overrides)
    return cfg


def test_confusion_matrix_and_exact_miou():
    gt = np.array([[0, 0, 1, 1], [2, 2, 255, 1]], dtype=np.uint8)
    pred = np.array([[0, 1, 1, 1], [2, 0, 2, 2]], dtype=np.uint8)
    cm = confusion_matrix(pred, gt, num_classes=4)
    expected = np.zeros((4, 4), dtype=np.int64)
    # (gt, pred) pairs of the 7 non-ignored pixels.
    for g, p in ((0, 0), (0, 1), (1, 1), (1, 1), (2, 2), (2, 0), (1, 2)):
        expected[g, p] += 1
    np.testing.assert_array_equal(cm, expected)
    iou = iou_from_confusion(cm)
    # class 0: TP 1, FP 1, FN 1 -> 1/3; class 1: TP 2, FP 1, FN 1 -> 1/2;
    # class 2: TP 1, FP 1, FN 1 -> 1/3; class 3 never labelled nor predicted -> NaN.
    np.testing.assert_allclose(iou[:3], [1 / 3, 1 / 2, 1 / 3])
    assert np.isnan(iou[3])
    assert mean_iou(cm) == pytest.approx((1 / 3 + 1 / 2 + 1 / 3) / 3)
    assert mean_iou(cm, classes=[0, 1]) == pytest.approx((1 / 3 + 1 / 2) / 2)
    assert pixel_accuracy(cm) == pytest.approx(4 / 7)
    summary = summarize(cm, ['a', 'b', 'c', 'd'], classes=[1, 2])
    assert summary['miou'] == pytest.approx((1 / 2 + 1 / 3) / 2)
    assert [r['name'] for r in summary['per_class']] == ['b', 'c']


def test_evaluate_loop_with_a_predict_callable():
    label = np.array([[0, 1], [1, 255]], dtype=np.uint8)
    dataset = [(np.zeros((2, 2, 3), np.uint8), label)] * 3

    def predict(rgb):
        return np.array([[0, 0], [1, 1]], dtype=np.uint8)

    cm = evaluate(predict, dataset, num_classes=2)
    np.testing.assert_array_equal(cm, [[3, 0], [3, 3]])
    assert mean_iou(cm) == pytest.approx((3 / 6 + 3 / 6) / 2)


def test_ohem_keeps_at_least_n_min_and_ignores_255():
    torch.manual_seed(0)
    n, c, h, w = 1, 3, 8, 8
    labels = torch.zeros(n, h, w, dtype=torch.long)
    # Confident, correct logits everywhere: no pixel is "hard", so n_min decides.
    logits = torch.zeros(n, c, h, w)
    logits[:, 0] = 10.0 + torch.rand(n, h, w)
    labels[0, :2] = 255
    # Ignored pixels get hopeless logits: if they counted, the loss would explode.
    logits[0, 1, :2] = 100.0
    valid = int((labels != 255).sum())
    n_min = valid // 16
    pixel = torch.nn.functional.cross_entropy(logits, labels, ignore_index=255,
                                              reduction='none')[labels != 255]
    expected = pixel.topk(n_min).values.mean()
    loss = ohem_cross_entropy(logits, labels)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert loss.item() < 1e-3
    # With many hard pixels all of them count, which is more than n_min.
    logits[0, 0, 4:] = -10.0
    hard = torch.nn.functional.cross_entropy(logits, labels, ignore_index=255,
                                             reduction='none')[labels != 255]
    hard = hard[hard > -np.log(0.7)]
    assert hard.numel() > n_min
    assert ohem_cross_entropy(logits, labels).item() == pytest.approx(hard.mean().item())
    all_ignored = torch.full((n, h, w), 255, dtype=torch.long)
    assert ohem_cross_entropy(logits.requires_grad_(), all_ignored).item() == 0.0


def test_transforms_never_invent_label_values():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    label = rng.choice(np.array([0, 3, 7], dtype=np.uint8), size=(60, 80))
    label[20:40, 30:50] = 11
    allowed = set(np.unique(label).tolist()) | {255}
    transform = train_transform((96, 64), scales=(0.5, 2.0), rng=rng)
    for _ in range(30):
        image, out = transform(rgb, label)
        assert image.shape == (3, 64, 96) and image.dtype == torch.float32
        assert out.shape == (64, 96) and out.dtype == torch.int64
        assert set(torch.unique(out).tolist()) <= allowed


@pytest.mark.parametrize('source', ['coincheung', 'mmseg'])
def test_crop_padding_normalises_to_zero_with_the_checkpoints_own_mean(source):
    from bisenet_ros.checkpoint import NORMALISATION
    mean, std = NORMALISATION[source]
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)
    label = np.zeros((20, 30), np.uint8)
    # No scaling, flip or jitter: only the crop pads (to 64x48) and normalises.
    transform = train_transform((64, 48), scales=(1.0, 1.0), jitter=0.0, mean=mean, std=std,
                                rng=rng)
    img, target = transform(rgb, label)
    padded = (target == 255).numpy()
    assert padded.sum() == 64 * 48 - 20 * 30
    # 8-bit rounding of the mean leaves at most half a grey level.
    assert np.abs(img.numpy()[:, padded]).max() < 0.5 / 255 / min(std)


def test_camvid_lut_matches_the_readme():
    lut = camvid_to_train_id_lut()
    assert lut[:12].tolist() == [10, 2, 5, 0, 1, 8, 7, 4, 13, 11, 12, 255]
    assert lut[12:].tolist() == [255] * 244
    assert CAMVID_TRAIN_IDS == (0, 1, 2, 4, 5, 7, 8, 10, 11, 12, 13)


@pytest.mark.parametrize('override', ['', 'avx2'])
def test_training_precision_asks_the_capability_probe(monkeypatch, override):
    from bisenet_ros.runtime import hardware
    from bisenet_ros.training.config import pick_autocast
    monkeypatch.setenv(hardware.ENV_OVERRIDE, override)
    cpu = torch.device('cpu')
    native = hardware.probe().cpu.native_bf16
    assert pick_autocast('auto', cpu) == (torch.bfloat16 if native else None)
    assert pick_autocast('off', cpu) is None
    if native:
        assert pick_autocast('bf16', cpu) == torch.bfloat16
    else:
        with pytest.raises(SystemExit, match='amp bf16: .*no native bf16.*use fp32'):
            pick_autocast('bf16', cpu)
    with pytest.raises(SystemExit, match='amp fp16: fp16 on a CPU would be emulated'):
        pick_autocast('fp16', cpu)


def test_poly_schedule_with_warmup():
    assert poly_warmup_factor(0, 100, warmup_iter=10) == pytest.approx(0.1)
    assert poly_warmup_factor(10, 100, warmup_iter=10) == pytest.approx(1.0)
    assert poly_warmup_factor(55, 100, warmup_iter=10) == pytest.approx(0.5 ** 0.9)
    assert poly_warmup_factor(100, 100, warmup_iter=10) == 0.0
    linear = [poly_warmup_factor(i, 100, 10, warmup='linear') for i in range(11)]
    assert linear == sorted(linear)


@needs_camvid
def test_a_few_iterations_lower_the_loss_on_real_frames():
    torch.manual_seed(0)
    dataset = build_dataset('camvid', CAMVID, 'train',
                            train_transform((96, 64), scales=(0.3, 0.3), jitter=0.0,
                                            rng=np.random.default_rng(0)))
    images, labels = zip(*(dataset[i] for i in range(2)))
    images, labels = torch.stack(images), torch.stack(labels)
    model = build_model('bisenetv2', 19, aux=True).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    losses = []
    for _ in range(6):
        outputs = model(images)
        loss = sum(ohem_cross_entropy(o, labels) for o in outputs)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


@needs_camvid
def test_train_tool_runs_evaluates_saves_and_resumes(tmp_path):
    from bisenet_ros.training.trainer import Trainer
    cfg = _train_config(tmp_path, output=str(tmp_path / 'best.safetensors'))
    trainer = Trainer(cfg, 'test')
    best = trainer.run()
    assert trainer.iteration == 2 and best is not None
    assert (tmp_path / 'run' / 'last.pth').exists() and (tmp_path / 'run' / 'best.pth').exists()
    lines = (tmp_path / 'run' / 'metrics.jsonl').read_text().splitlines()
    assert any('"val"' in line for line in lines)
    resumed = Trainer(dict(cfg, max_iter=3), 'test')
    resumed.resume(tmp_path / 'run' / 'last.pth')
    assert resumed.iteration == 2
    resumed.run()
    assert resumed.iteration == 3

    from bisenet_ros.checkpoint import load_checkpoint
    model, info = load_checkpoint(tmp_path / 'best.safetensors')
    assert info.arch == 'bisenetv2' and info.num_classes == 19
    assert tuple(info.input_size) == (128, 96)
    assert info.metadata['training']['iterations'] >= 2
    assert not any(k.startswith('aux') for k in model.state_dict())


@needs_camvid
def test_fine_tune_from_an_11_class_checkpoint(tmp_path):
    from bisenet_ros.checkpoint import save_checkpoint
    from bisenet_ros.training.trainer import Trainer
    source = build_model('bisenetv2', 11, aux=False).eval()
    fixture = tmp_path / 'eleven.safetensors'
    save_checkpoint(fixture, source, {'arch': 'bisenetv2', 'num_classes': 11,
                                      'class_names': [f'c{i}' for i in range(11)],
                                      'palette': [[i, i, i] for i in range(11)]})
    trainer = Trainer(_train_config(tmp_path, init=str(fixture), max_iter=1, val_split=''),
                      'test')
    state = trainer.model.state_dict()
    # Everything but the classifiers came from the fixture; the classifiers now have 19 outputs.
    key = 'detail.S1.0.conv.weight'
    torch.testing.assert_close(state[key], source.state_dict()[key])
    assert state['head.conv_out.1.weight'].shape[0] == 19
    assert state['aux2.conv_out.1.weight'].shape[0] == 19
    trainer.run()
    assert trainer.iteration == 1
    trainer.model.eval()
    with torch.no_grad():
        assert trainer.model(torch.zeros(1, 3, 64, 64)).shape == (1, 19, 64, 64)


@needs_camvid
def test_evaluate_tool_writes_json(tmp_path):
    import json
    from bisenet_ros.checkpoint import save_checkpoint
    from bisenet_ros.tools.evaluate import main
    torch.manual_seed(0)
    checkpoint = tmp_path / 'tiny.safetensors'
    save_checkpoint(checkpoint, build_model('bisenetv2', 19, aux=False).eval(),
                    {'arch': 'bisenetv2', 'input_size': [64, 64]})
    root = _mini_camvid(tmp_path)
    out = tmp_path / 'eval.json'
    assert main([str(checkpoint), '--data-root', str(root), '--classes', 'camvid',
                 '--json', str(out)]) == 0
    summary = json.loads(out.read_text())
    assert summary['frames'] == 2 and summary['classes'] == list(CAMVID_TRAIN_IDS)
    assert 0.0 <= summary['miou'] <= 1.0
    assert np.array(summary['confusion_matrix']).sum() > 0


@pytest.mark.parametrize('listing', [None, '', '\n\n'])
def test_evaluate_and_train_name_a_missing_or_empty_data_root_in_one_line(
        tmp_path, checkpoint, capsys, listing):
    from bisenet_ros.tools import evaluate, train
    if listing is not None:
        (tmp_path / 'val.txt').write_text(listing)
        (tmp_path / 'train.txt').write_text(listing)
    expected = 'lists no frames' if listing is not None else 'not found'
    assert evaluate.main([str(checkpoint), '--data-root', str(tmp_path),
                          '--input-size', '128,64']) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith('bisenet-evaluate: --data-root: ') and expected in err
    assert len(err.splitlines()) == 1
    with pytest.raises(SystemExit, match=f'bisenet-train: .*{expected}'):
        train.main(['--data-root', str(tmp_path), '--out-dir', str(tmp_path / 'run'),
                    '--threads', '1'])
