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

import copy
import hashlib
from pathlib import Path
import re

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
    cfg = dict(DEFAULTS, data=str(_mini_camvid(tmp_path)), out_dir=str(tmp_path / 'run'),
               output=str(tmp_path / 'run' / 'best.safetensors'), crop_size=[96, 64],
               scales=[0.3, 0.4], input_size=[128, 96], batch=2, max_iter=2, eval_every=1000,
               warmup_iter=1, log_every=1, amp='off', eval_classes=list(CAMVID_TRAIN_IDS),
               cache=True, threads=1)
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
        with pytest.raises(ValueError, match='amp bf16: .*no native bf16.*use fp32'):
            pick_autocast('bf16', cpu)
    with pytest.raises(ValueError, match='amp fp16: fp16 on a CPU would be emulated'):
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
    cfg = _train_config(tmp_path, model=str(fixture), max_iter=1, val_split='')
    asked = copy.deepcopy(cfg)
    trainer = Trainer(cfg, 'test')
    state = trainer.model.state_dict()
    # Everything but the classifiers came from the fixture; the classifiers now have 19 outputs.
    key = 'detail.S1.0.conv.weight'
    torch.testing.assert_close(state[key], source.state_dict()[key])
    assert state['head.conv_out.1.weight'].shape[0] == 19
    assert state['aux2.conv_out.1.weight'].shape[0] == 19
    trainer.run()
    assert trainer.iteration == 1
    # The settings stay as given: the start checkpoint's layout is the trainer's, not the dict's.
    assert cfg == asked
    with pytest.raises(TypeError):
        trainer.cfg['lr'] = 1.0
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
    assert main(['--model', str(checkpoint), '--data', str(root), '--classes', 'camvid',
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
    assert evaluate.main(['--model', str(checkpoint), '--data', str(tmp_path),
                          '--input-size', '128x64']) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith('bisenet evaluate: ') and expected in err
    assert len(err.splitlines()) == 1
    # A missing root is a file not found (1); a root listing nothing is a bad setting (2).
    assert train.main(['--data', str(tmp_path), '--out-dir', str(tmp_path / 'run'),
                       '--threads', '1']) == (1 if listing is None else 2)
    err = capsys.readouterr().err.strip()
    assert err.startswith('bisenet train: ') and expected in err
    assert len(err.splitlines()) == 1


REPO = Path(__file__).resolve().parents[1]
# Settings that shrink the README's runs to seconds; the configs give everything else.
TINY = ['--crop-size', '96x64', '--scales', '0.3,0.4', '--input-size', '128x96', '--batch', '2',
        '--max-iter', '2', '--warmup-iter', '1', '--eval-every', '1000', '--amp', 'off',
        '--channels-last', 'false', '--threads', '1']


def _weights_digests():
    """Return {name: SHA-256} of every file in the installed package's weights folder."""
    from importlib import resources
    folder = Path(str(resources.files('bisenet_ros'))) / 'weights'
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file()}


@needs_camvid
def test_readme_train_and_fine_tune_commands_write_under_runs_only(tmp_path, monkeypatch,
                                                                   capsys):
    from bisenet_ros.checkpoint import load_checkpoint
    from bisenet_ros.tools.train import main
    data = _mini_camvid(tmp_path)
    work = tmp_path / 'work'
    work.mkdir()
    monkeypatch.chdir(work)
    shipped = _weights_digests()
    assert main(['--config', str(REPO / 'config' / 'train_camvid_v2.yaml'),
                 '--data', str(data)] + TINY) == 0
    run = work / 'runs' / 'train_camvid_v2'
    trained = run / 'train_camvid_v2.safetensors'
    assert {'last.pth', 'best.pth', 'metrics.jsonl', trained.name} <= {
        p.name for p in run.iterdir()}
    # mIoU in percent with two decimals, as bisenet evaluate prints it.
    out = capsys.readouterr().out
    assert re.search(r'val mIoU \d{1,3}\.\d\d  pixel accuracy \d{1,3}\.\d\d', out)
    assert re.search(r'best val mIoU \d{1,3}\.\d\d ', out)

    assert main(['--config', str(REPO / 'config' / 'finetune_camvid_v2.yaml'),
                 '--model', str(trained), '--data', str(data)] + TINY) == 0
    tuned = work / 'runs' / 'finetune_camvid_v2' / 'finetune_camvid_v2.safetensors'
    recipe = load_checkpoint(tuned)[1].metadata['training']['recipe']
    first = load_checkpoint(trained)[1].metadata['training']['recipe']
    assert recipe['model'] == str(trained) and first['model'] is None
    assert recipe['lr'] == pytest.approx(first['lr'] / 10)
    assert sorted(p.name for p in work.iterdir()) == ['runs']
    assert _weights_digests() == shipped


@pytest.mark.parametrize('flag, path', [
    ('--output', 'bisenet_ros/weights/bisenetv2_camvid_demo.safetensors'),
    ('--output', 'bisenet_ros/weights/new.safetensors'),
    ('--out-dir', 'bisenet_ros/weights'),
    ('--out-dir', 'bisenet_ros/weights/../weights/run'),
])
@pytest.mark.parametrize('export_best', [False, True])
def test_train_refuses_to_write_inside_the_package_weights(tmp_path, monkeypatch, capsys,
                                                           flag, path, export_best):
    from bisenet_ros.tools.train import main
    monkeypatch.chdir(REPO)
    shipped = _weights_digests()
    argv = ['--config', 'config/train_camvid_v2.yaml', '--data', str(tmp_path), flag, path]
    assert main(argv + (['--export-best'] if export_best else [])) == 2
    err = capsys.readouterr().err.strip()
    # --export-best reads <out_dir>/best.pth: the refused path is then the --output inside it.
    assert re.match(r'bisenet train: --out(put|-dir) bisenet_ros/weights\S* is inside the '
                    r'installed package \(.*\), whose files ship with it', err), err
    assert len(err.splitlines()) == 1
    assert _weights_digests() == shipped


def test_train_accepts_data_and_model_only(capsys):
    from bisenet_ros.tools.train import main
    for old in ('--data-root', '--init', '--dat', '--mod'):
        with pytest.raises(SystemExit) as exit_info:
            main([old, 'x'])
        assert exit_info.value.code == 2 and old in capsys.readouterr().err


def test_load_config_names_the_run_after_the_config_and_is_read_only(tmp_path):
    from bisenet_ros.training.config import load_config
    config = str(REPO / 'config' / 'train_camvid_v2.yaml')
    cfg = load_config(config, {'data': 'camvid'})
    assert cfg['out_dir'] == str(Path('runs') / 'train_camvid_v2')
    assert cfg['output'] == str(Path('runs') / 'train_camvid_v2' / 'train_camvid_v2.safetensors')
    with pytest.raises(TypeError):
        cfg['lr'] = 1.0
    qat = load_config(config, {'data': 'camvid', 'qat': True}, runs_dir=str(tmp_path))
    assert qat['output'] == str(tmp_path / 'train_camvid_v2_qat' / 'train_camvid_v2_qat.onnx')
    named = load_config(None, {'data': 'camvid'}, name='mine')
    assert named['out_dir'] == str(Path('runs') / 'mine')
