"""Models you can trust: novelty ("not one of my classes"), temperature scaling, calibration
error, multi-stage embeddings, full-mode defaults, and what the CLI, sorting and old model files do
with them. Data is generated (tests/core/trust_data.py)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cnndesk.core.trust import scores as trust

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/core: the generated data sets
import trust_data  # noqa: E402

# -- numpy-only pieces --------------------------------------------------------------------------


def _blobs(rng, n, centres, spread=1.0):
    k, d = centres.shape
    y = rng.integers(0, k, n)
    return centres[y] + rng.normal(0, spread, (n, d)), y


def test_temperature_lowers_calibration_error_of_an_overconfident_model():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 0.5, (4, 16))
    x, y = _blobs(rng, 2000, centres, 1.0)
    w = centres * 6.0  # logits six times too sharp: an overconfident model (about 80 % right)
    logits = x @ w.T
    fit_x, fit_y, test_x, test_y = logits[:1000], y[:1000], logits[1000:], y[1000:]
    t = trust.fit_temperature(fit_x, fit_y)
    before = trust.ece(trust.softmax(test_x), test_y)
    after = trust.ece(trust.softmax(test_x, t), test_y)
    assert 4 < t < 8  # it finds (about) the factor and softens the confidences
    assert before > 0.1 and after < 0.05 and after < before / 2
    # ranking never changes
    assert (trust.softmax(test_x, t).argmax(1) == test_x.argmax(1)).all()


def test_reliability_bins_and_ece_by_hand():
    probs = np.array([[0.95, 0.05], [0.95, 0.05], [0.55, 0.45], [0.55, 0.45]])
    y = np.array([0, 1, 0, 0])
    rel = trust.reliability(probs, y, bins=10)
    top = {round(b["lo"], 1): b for b in rel["bins"] if b["count"]}
    assert top[0.9]["count"] == 2 and top[0.9]["accuracy"] == 0.5
    assert top[0.5]["count"] == 2 and top[0.5]["accuracy"] == 1.0
    assert rel["ece"] == pytest.approx((2 * 0.45 + 2 * 0.45) / 4)


def test_novelty_flags_far_points_and_about_five_percent_of_held_out_own_points():
    rng = np.random.default_rng(1)
    centres = rng.normal(0, 3, (3, 64))
    x, _ = _blobs(rng, 600, centres)
    held, _ = _blobs(rng, 400, centres)
    far = rng.normal(0, 3, (100, 64)) + 12.0
    nov, oof = trust.fit_novelty_oof(x, np.arange(len(x)) % 5)
    assert 0.02 <= nov.flags(nov.score(held)).mean() <= 0.10
    assert nov.flags(nov.score(far)).mean() == 1.0
    assert trust.auroc(nov.score(held), nov.score(far)) > 0.99
    # a stricter/looser setting moves the threshold the right way; 0 never flags
    assert nov.threshold_for(0.01) > nov.threshold_for(0.05) > nov.threshold_for(0.2)
    assert nov.threshold_for(0.05) == pytest.approx(nov.threshold, rel=1e-6)
    assert not nov.flags(nov.score(far), nov.threshold_for(0)).any()


def test_auroc_edge_cases():
    assert trust.auroc([0, 1], [2, 3]) == 1.0
    assert trust.auroc([2, 3], [0, 1]) == 0.0
    assert trust.auroc([1, 1], [1, 1]) == 0.5


def test_plan_sort_puts_unknowns_in_their_own_folder(tmp_path):
    from cnndesk.core.organize.sorting import UNKNOWN, UNSURE, plan_sort

    rows = [("a.jpg", "brick", 0.99, None, True), ("b.jpg", "brick", 0.99, None, False),
            ("c.jpg", "brick", 0.2, None, False), ("d.jpg", None, None, "broken", False),
            ("e.jpg", "wood", 0.9, None)]  # old 4-field rows still work
    plan = plan_sort(rows, tmp_path, threshold=0.5)
    assert [m.folder for m in plan.moves] == [UNKNOWN, "brick", UNSURE, "wood"]
    assert plan.skipped_errors == 1 and "_unknown: 1" in plan.describe()


def test_full_mode_choices_follow_the_data(tmp_path):
    from cnndesk.core.training import full_settings as fullmode
    from cnndesk.core.training.config import TrainConfig
    from cnndesk.core.training.datasets import scan

    trust_data.make_set(tmp_path / "sym", "symbols", 4, 0)  # 112 px images, 4 per class
    ds = scan(tmp_path / "sym", val_split=0.25)
    ch = fullmode.choose(ds, TrainConfig(mode="full"), "cpu")
    assert ch.image_size == 224  # the earlier stages stay pretrained: read at the scale they were learned at
    assert ch.unfrozen_blocks == 2  # 3 images per class: too few for the whole network
    assert 3 <= ch.epochs <= 12
    assert ch.cpu_bf16 == fullmode.cpu_has_native_bf16()
    ds.train = ds.train * 20  # "enough images per class"
    # issue 23: still the last two blocks, so the stages the novelty detector reads stay pretrained
    assert fullmode.choose(ds, TrainConfig(mode="full"), "cpu").unfrozen_blocks == 2
    assert TrainConfig().keep_early_stages
    # the rule before: the whole network from 30 images per class
    whole = fullmode.choose(ds, TrainConfig(mode="full", keep_early_stages=False), "cpu")
    assert (whole.unfrozen_blocks, whole.image_size) == (0, 128)  # the whole network: 112 px sources at 128, not 224
    fixed = fullmode.choose(ds, TrainConfig(mode="full", image_size=160, unfrozen_blocks=1, epochs=2, cpu_bf16=False))
    assert (fixed.image_size, fixed.unfrozen_blocks, fixed.epochs, fixed.cpu_bf16) == (160, 1, 2, False)
    assert TrainConfig().augment_flip is False


# -- with the real network ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def textures(tmp_path_factory):
    root = tmp_path_factory.mktemp("trust")
    train_dir = trust_data.make_set(root / "train", "textures", 30, 0)
    test_dir = trust_data.make_set(root / "test", "textures", 10, 1)
    unrelated = trust_data.make_unrelated(root / "unrelated", 24)
    return train_dir, test_dir, unrelated


@pytest.fixture(scope="module")
def trust_model(textures, classifier):
    from cnndesk.core.training.config import TrainConfig
    from cnndesk.core.training.datasets import scan
    from cnndesk.core.training.dispatch import train

    ds = scan(textures[0], seed=0)
    return ds, train(ds, TrainConfig(mode="quick", seed=0))


def test_embed_paths_multi_stage_rows_in_order_and_nan_for_bad_files(textures, tmp_path, classifier):
    from cnndesk.core.predict.embeddings import embed_paths

    good = sorted(str(p) for p in (textures[1] / "dots").iterdir())[:3]
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    errors = []
    x = embed_paths(good + [str(bad)], stages="multi", cache=False, errors=errors)
    last = embed_paths(good, stages="last", cache=False)
    assert x.shape == (4, 2528) and last.shape == (3, 1280)
    assert np.isfinite(x[:3]).all() and np.isnan(x[3]).all()
    assert errors and errors[0][0] == str(bad)
    # the last 1280 values of the multi-stage vector are the pooled last layer: same pass
    np.testing.assert_allclose(x[:3, -1280:], last, rtol=1e-4, atol=1e-4)


def test_quick_model_flags_unrelated_images_and_few_of_its_own(trust_model, textures, tmp_path):
    from cnndesk.core.predict.classifier import Classifier

    ds, model = trust_model
    assert model.novelty is not None and 0.05 < model.temperature < 20
    assert model.evaluation.accuracy >= 0.9
    path = model.save(tmp_path / "tex.safetensors")
    clf = Classifier(str(path))
    assert clf.novelty is not None and clf.temperature == pytest.approx(model.temperature, rel=1e-5)
    own = clf.predict(sorted(str(p) for p in textures[1].rglob("*.png")), 3)
    unrelated = clf.predict(textures[2], 3)
    own_flagged = np.mean([p.unknown for p in own])
    unrelated_flagged = np.mean([p.unknown for p in unrelated])
    assert unrelated_flagged >= 0.9, unrelated_flagged
    assert own_flagged <= 0.2, own_flagged
    assert all(p.novelty is not None for p in own + unrelated)
    # the flag follows the per-model setting
    clf.set_flag_rate(0)
    assert not any(p.unknown for p in clf.predict(textures[2][:4], 1))


def test_calibration_is_recorded_and_better_than_raw(trust_model):
    _, model = trust_model
    m = model.metrics()
    assert m["ece_after"] <= m["ece_before"]
    assert m["ece_after"] <= 0.1
    assert "val_flagged_unknown" in m and m["weight_decay"] in (1e-3, 1e-2, 1e-1)
    rel = model.evaluation.reliability()
    assert sum(b["count"] for b in rel["bins"]) == len(model.evaluation.y_true)
    assert model.evaluation.flagged_rate() is not None


def test_cli_json_and_csv_carry_unknown_and_novelty(trust_model, textures, tmp_path):
    _, model = trust_model
    path = model.save(tmp_path / "tex.safetensors")
    from cnndesk.core.predict.classifier import Classifier

    clf = Classifier(str(path))  # an own image the model accepts (about 5 % of them are flagged by design)
    own = next(p for p in map(str, sorted((textures[1] / "stripes").iterdir())) if not clf.predict([p], 1)[0].unknown)
    env = {**os.environ}
    run = lambda *a: subprocess.run([sys.executable, "-m", "cnndesk", *map(str, a)], capture_output=True,  # noqa: E731
                                    text=True, env=env, timeout=300)
    out = run("classify", own, textures[2][0], "--model", path, "-f", "json", "-q")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [r["unknown"] for r in rows] == [False, True]
    assert all(isinstance(r["novelty"], float) for r in rows) and rows[1]["novelty"] > rows[0]["novelty"]
    out = run("classify", own, textures[2][0], "--model", path, "-f", "csv", "-k", "2", "-q")
    table = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [r["unknown"] for r in table] == ["false", "true"] and float(table[1]["novelty"]) > 0
    # the built-in ImageNet model has no novelty detector: no such fields or columns
    out = run("classify", own, "-f", "json", "-q")
    assert "unknown" not in json.loads(out.stdout)[0]
    out = run("classify", own, "-f", "csv", "-q")
    assert "novelty" not in out.stdout.splitlines()[0]


def test_model_files_without_trust_fields_load_as_before(trust_model, textures, tmp_path):
    """An older model file (no temperature, no novelty): temperature 1, no unknown flag."""
    from dataclasses import replace

    from cnndesk.core.models.registry import read_model_file_metadata
    from cnndesk.core.predict.classifier import Classifier

    _, model = trust_model
    old = replace(model, novelty=None, temperature=1.0)
    path = old.save(tmp_path / "old.safetensors")
    meta = read_model_file_metadata(path)
    meta.pop("temperature")
    from safetensors.numpy import load_file, save_file

    tensors = load_file(str(path))
    assert not any(k.startswith("novelty.") for k in tensors)
    save_file(tensors, str(path), metadata={"cnndesk-model": json.dumps(meta)})
    clf = Classifier(str(path))
    assert clf.novelty is None and clf.temperature == 1.0
    p = clf.predict([textures[2][0]], 2)[0]
    assert p.novelty is None and p.unknown is False
    from cnndesk.core.predict.stream import FileResult

    assert "unknown" not in FileResult(0, "x", p).as_dict()


def test_damaged_novelty_data_does_not_stop_classification(trust_model, textures, tmp_path):
    from cnndesk.core.models.registry import read_model_file_metadata
    from cnndesk.core.predict.classifier import Classifier

    _, model = trust_model
    path = model.save(tmp_path / "dmg.safetensors")
    meta = read_model_file_metadata(path)
    meta["temperature"] = "not a number"
    from safetensors.numpy import load_file, save_file

    tensors = {k: v for k, v in load_file(str(path)).items() if k != "novelty.bank"}
    save_file(tensors, str(path), metadata={"cnndesk-model": json.dumps(meta)})
    clf = Classifier(str(path))
    assert clf.temperature == 1.0 and clf.novelty is None
    assert clf.predict([textures[2][0]], 1)[0].label in model.classes
