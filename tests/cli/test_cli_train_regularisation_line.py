"""`cnndesk train --mode quick` shows the default weight decay's epochs live while it tries the
others; when another wins on the validation split, the CLI says so with the kept fit's numbers
(the last epoch line used to read "val acc 50%" above a result of 100 %)."""

from __future__ import annotations

import json

from shapes import make_dataset

from cnndesk.cli import main
from cnndesk.core.training import head


def test_a_regularisation_other_than_the_one_shown_live_is_named(tmp_path, monkeypatch, capsys):
    # 72 training images: the default 1e-2 memorises them (val acc about 28 %), 0.1 generalises
    data = make_dataset(tmp_path / "data", per_class=(30, 30, 30), size=64)
    monkeypatch.setattr(head, "WEIGHT_DECAYS", (1e-2, 1e-1))
    code = main(["train", str(data), "--mode", "quick", "-o", str(tmp_path / "m")])
    out = capsys.readouterr()
    assert code == 0, out.err
    kept = [line for line in out.err.splitlines() if "was kept" in line]
    assert len(kept) == 1 and "tried weight decay 0.01" in kept[0] and "0.1 did better" in kept[0]
    metrics = json.loads(out.out)
    assert f"acc {metrics['val_accuracy']:.1%}" in kept[0]


def test_nothing_extra_when_the_live_fit_is_the_kept_one(tmp_path, monkeypatch, capsys):
    data = make_dataset(tmp_path / "data", per_class=(12, 12, 12), size=64)
    monkeypatch.setattr(head, "WEIGHT_DECAYS", (1e-1,))
    assert main(["train", str(data), "--mode", "quick", "-o", str(tmp_path / "m")]) == 0
    assert "was kept" not in capsys.readouterr().err
