"""The labelling session's API: opening a folder, asking, answering, suggestions, groups."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from label_data import CLASSES, fake_embed, make_pile

from cnndesk.core.common.errors import Cancelled
from cnndesk.core.common.progress import CancelToken
from cnndesk.core.labelling import NONE, SKIPPED, LabelError, LabelSession, fit_suggester


def _answer_all(s, questions, truth):
    for q in questions:
        s.answer(q.path, truth[os.path.realpath(q.path)])


def test_open_reads_subfolders_as_part_of_the_pile_unless_told(tmp_path):
    truth = make_pile(tmp_path / "p", per_class=5, subfolders=True)
    s = LabelSession.open(tmp_path / "p", embed=fake_embed)
    assert len(s.paths) == len(truth) == 20
    assert s.labelled == [] and s.classes == []
    s2 = LabelSession.open(tmp_path / "p", subfolders_are_labels=True, embed=fake_embed)
    assert sorted(s2.classes) == sorted(CLASSES)
    assert all(s2.label_of(p) == truth[os.path.realpath(p)] for p in s2.paths)


def test_open_reports_progress_and_cancels(pile):
    root, _ = pile
    seen = []
    LabelSession.open(root, embed=fake_embed, progress=lambda d, t, m: seen.append((d, t)))
    assert seen and seen[-1][0] == seen[-1][1] == 32
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        LabelSession.open(root, embed=fake_embed, cancel=token)


def test_empty_and_unreadable_folders_are_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(LabelError, match="holds no images"):
        LabelSession.open(tmp_path / "empty", embed=fake_embed)
    bad = tmp_path / "bad"
    bad.mkdir()
    for i in range(3):
        (bad / f"x{i}.jpg").write_bytes(b"not an image at all")
    with pytest.raises(LabelError, match="none of the 3 image files"):
        LabelSession.open(bad, embed=fake_embed)
    with pytest.raises(LabelError, match="does not exist"):
        LabelSession.open(tmp_path / "missing", embed=fake_embed)


def test_unreadable_files_are_listed_and_never_asked(pile):
    root, _ = pile
    (root / "broken.png").write_bytes(b"\x89PNG garbage")
    s = LabelSession.open(root, embed=fake_embed)
    assert [os.path.basename(p) for p, _ in s.unreadable] == ["broken.png"]
    asked = {q.path for q in s.ask(32)}
    assert not any(p.endswith("broken.png") for p in asked)
    assert all(not r.path.endswith("broken.png") for r in s.suggestions().rows)


def test_cold_start_asks_typical_images_covering_the_classes(session, pile):
    _, truth = pile
    qs = session.ask(4)
    assert len(qs) == 4 and all(q.kind == "typical" for q in qs)
    assert {truth[os.path.realpath(q.path)] for q in qs} == set(CLASSES)  # one per class
    assert all("typical" in q.reason for q in qs)


def test_ask_never_repeats_answered_images_or_their_near_duplicates(pile, tmp_path):
    root, truth = pile
    import shutil

    src = sorted(truth)[0]
    shutil.copyfile(src, root / "copy_of_first.png")  # an exact duplicate
    s = LabelSession.open(root, embed=fake_embed)
    s.answer(src, truth[src])
    asked = [q.path for q in s.ask(33)]
    assert src not in asked and not any(p.endswith("copy_of_first.png") for p in asked)
    assert len(asked) == len(set(asked))


def test_after_answers_ask_picks_uncertain_images_and_suggestions_get_right(session, pile):
    _, truth = pile
    _answer_all(session, session.ask(4), truth)
    for _ in range(3):
        qs = session.ask(4)
        assert {q.kind for q in qs} == {"uncertain"} and all("unsure between" in q.reason for q in qs)
        _answer_all(session, qs, truth)
    assert len(session.labelled) == 16
    rep = session.suggestions()
    assert len(rep.rows) == 32 - 16
    right = np.mean([r.label == truth[os.path.realpath(r.path)] for r in rep.rows])
    assert right >= 0.9
    assert all(0.0 <= r.score <= 1.0 for r in rep.rows)


def test_few_labels_are_not_calibrated_and_scores_stay_conservative(session, pile):
    _, truth = pile
    _answer_all(session, session.ask(4), truth)
    rep = session.suggestions()
    assert rep.calibrated is False
    assert max(r.score for r in rep.rows) <= 0.8 + 1e-6
    assert not any(r.unknown for r in rep.rows)


def test_enough_labels_calibrate_and_estimate_accuracy(session, pile):
    _, truth = pile
    for p in session.paths[:24]:
        session.answer(p, truth[os.path.realpath(p)])
    assert min(session.counts().values()) >= 5
    rep = session.suggestions()
    assert rep.calibrated is True
    assert rep.estimated_accuracy is not None and rep.estimated_accuracy >= 0.8
    assert len(rep.rows) == 8


def test_no_labels_gives_rows_without_a_label(session):
    rep = session.suggestions()
    assert len(rep.rows) == 32 and rep.calibrated is False and rep.estimated_accuracy is None
    assert all(r.label is None and r.score == 0.0 for r in rep.rows)


def test_skip_and_none_of_these(session, pile):
    _, truth = pile
    p0, p1 = session.paths[:2]
    session.skip(p0)
    session.none_of_these(p1)
    assert session.state(p0) == SKIPPED and session.state(p1) == NONE
    assert session.label_of(p0) is None and session.labelled == []
    asked = {q.path for q in session.ask(32)}
    assert p0 not in asked and p1 not in asked
    rows = {r.path for r in session.suggestions().rows}
    assert p0 in rows and p1 not in rows  # skipped still unlabelled; "none" is an answer


def test_none_of_these_is_learnt_as_unknown(tmp_path):
    truth = make_pile(tmp_path / "p", per_class=8)
    s = LabelSession.open(tmp_path / "p", embed=fake_embed)
    for p in s.paths:
        c = truth[os.path.realpath(p)]
        if c == "cross":
            if p.endswith(("0.png", "1.png", "2.png", "3.png", "4.png")):
                s.none_of_these(p)
        elif not p.endswith(("6.png", "7.png")):
            s.answer(p, c)
    rows = s.suggestions().rows
    crosses = [r for r in rows if truth[os.path.realpath(r.path)] == "cross"]
    assert crosses and all(r.unknown for r in crosses)
    assert "cross" not in s.classes


def test_groups_cover_everything_and_can_be_named_and_adjusted(session, pile):
    _, truth = pile
    groups = session.groups()
    assert sum(len(g.members) for g in groups) == 32
    assert sorted(i for g in groups for i in g.members) == list(range(32))
    assert [len(g.members) for g in groups] == sorted((len(g.members) for g in groups), reverse=True)
    session.set_group_count(4)
    groups = session.groups()
    assert len(groups) == 4
    g = groups[0]
    session.name_group(0, "thing")
    assert all(session.label_of(i) == "thing" for i in g.members)
    assert session.groups()[0].answered == {"thing": len(g.members)}
    assert session.group_of(g.members[0]) == 0


def test_accept_above_and_accept_group_and_correct(session, pile):
    _, truth = pile
    for p in session.paths[:20]:
        session.answer(p, truth[os.path.realpath(p)])
    rep = session.suggestions()
    high = [r for r in rep.rows if r.score >= 0.5 and not r.unknown]
    act = session.accept_above(0.5)
    assert act is not None and len(act.changes) == len(high)
    assert all(session.label_of(r.index) == r.label for r in high)
    wrong = high[0]
    session.correct(wrong.index, "other")
    assert session.label_of(wrong.index) == "other" and "other" in session.classes
    g = session.group_of(session.paths[-1])
    session.accept_group(g)
    assert all(session.state(i) is not None for i in session.groups()[g].members)


def test_invalid_class_names_are_refused(session):
    for bad in ("", "  ", "a/b", "x:y", "CON", "trailing.", "tab\tname", "_unsure", "x" * 101):
        with pytest.raises(LabelError):
            session.answer(0, bad)
    for bad in ("a\\b", "_none", "_Unknown"):
        with pytest.raises(LabelError):
            session.add_class(bad)
    assert session.classes == [] and session.labelled == []


def test_unknown_image_is_a_key_error(session, tmp_path):
    with pytest.raises(KeyError):
        session.answer(str(tmp_path / "nope.png"), "x")
    with pytest.raises(KeyError):
        session.skip(10_000)


def test_background_fit_through_snapshot_and_install(session, pile):
    _, truth = pile
    for p in session.paths[:12]:
        session.answer(p, truth[os.path.realpath(p)])
    snap = session.snapshot()
    model = fit_suggester(snap)  # what a worker thread runs
    session.answer(session.paths[12], truth[os.path.realpath(session.paths[12])])
    session.install(model)
    assert not session.model_is_current  # fitted on older answers: used, but known stale
    assert session._suggester is model
    session.suggestions()  # refits on demand
    assert session.model_is_current


def test_resized_reencoded_copies_of_answered_images_are_not_asked(pile):
    from PIL import Image

    root, truth = pile
    src = sorted(truth)[3]
    with Image.open(src) as im:
        im.convert("RGB").resize((43, 43)).save(root / "smaller_copy.jpg", quality=80)
    s = LabelSession.open(root, embed=fake_embed)
    copy = str((root / "smaller_copy.jpg").resolve())
    s.answer(src, truth[src])
    asked = [q.path for q in s.ask(40)]
    assert copy not in asked and len(asked) >= 20  # (a few look alike to the pixel too)
    s2 = LabelSession.open(root, embed=fake_embed, duplicates=False)  # by the stand-in embeddings alone
    s2.answer(src, truth[src])
    assert s2.space.pixels is None


def test_default_embedder_reads_a_fully_cached_folder_without_opening_the_network(pile, monkeypatch, isolated_dirs):
    """(its own cache folder: the suite's shared embedding cache holds real features of other files)"""
    import cnndesk.core.predict.embeddings as features
    from cnndesk.core.labelling.session import default_embedder
    from cnndesk.core.models.registry import default_model
    from cnndesk.core.runtime.resolve import resolve

    root, truth = pile
    paths = sorted(truth)
    spec = default_model()
    cache = features.EmbeddingCache(f"{spec.name}-{resolve(spec, 'multi', lookup=False).cache_key()}")
    rng = np.random.default_rng(0)
    want = rng.normal(size=(len(paths), 16)).astype(np.float32)
    for p, v in zip(paths, want, strict=True):
        cache.put(p, v)
    cache.save()

    def no_network(*a, **k):
        raise AssertionError("the network was opened although every file is cached")

    monkeypatch.setattr(features, "embed_paths", no_network)
    seen = []
    got = default_embedder(paths, progress=lambda d, t, m: seen.append(d))
    assert np.array_equal(got, want) and seen[-1] == len(paths)
    (root / "new.png").write_bytes(Path(paths[0]).read_bytes())  # one file not cached: the full path
    with pytest.raises(AssertionError, match="network was opened"):
        default_embedder([*paths, str(root / "new.png")])


def test_a_lone_image_is_not_called_the_most_typical_of_1_similar_images(tmp_path):
    """'own/img_00001.png  (the most typical of 1 similar images with no answers yet)' (new-user round)."""
    from PIL import Image

    truth = make_pile(tmp_path / "p", per_class=5)
    Image.new("RGB", (40, 40), (255, 0, 255)).save(tmp_path / "p" / "odd.png")
    s = LabelSession.open(tmp_path / "p", embed=fake_embed)
    reasons = [q.reason for q in s.ask(len(truth) + 1)]
    assert not any("of 1 similar" in r for r in reasons), reasons
