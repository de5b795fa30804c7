"""Warnings and threads: the export silences only its own thread's warnings, and image decoding
ignores Pillow's bomb warning without swapping the process-wide filter list (``catch_warnings``
blocks in several threads restored the list in the wrong order)."""

import threading
import warnings

import pytest
from PIL import Image


def _shown_in(fn):
    """Warnings that reach warnings.showwarning (the user's stderr) while ``fn`` runs."""
    seen = []
    original = warnings.showwarning

    def record(message, category, filename, lineno, file=None, line=None):
        seen.append(str(message))

    warnings.showwarning = record
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = record  # catch_warnings put back the one it found: ours
            fn()
    finally:
        warnings.showwarning = original
    return seen


def test_an_export_mutes_its_own_thread_and_no_other(monkeypatch, tmp_path):
    """torch.onnx's warnings are dropped while the export runs in the background; the main
    thread's warnings meanwhile still show (a global ``simplefilter("ignore")`` hid them), and
    the filter list is the same object, unchanged, afterwards."""
    import torch

    from cnndesk.core.runtime import export_cache

    inside, release = threading.Event(), threading.Event()

    class Program:
        def save(self, path, external_data=False):
            pass

    def fake_export(*args, **kwargs):
        warnings.warn("exporter chatter", UserWarning, stacklevel=1)
        inside.set()
        assert release.wait(10)
        warnings.warn("more exporter chatter", UserWarning, stacklevel=1)
        return Program()

    monkeypatch.setattr(torch.onnx, "export", fake_export)

    def scenario():
        before = warnings.filters
        t = threading.Thread(target=export_cache.export_onnx,
                             args=(torch.nn.Identity(), 8, tmp_path / "m.onnx"))
        t.start()
        assert inside.wait(10)
        warnings.warn("the user's own warning", UserWarning, stacklevel=1)
        release.set()
        t.join(10)
        assert warnings.filters is before  # not swapped (lazy imports may add their own entries)
        assert not [f for f in warnings.filters if f[0] == "ignore" and f[1] is None and f[2] is Warning
                    and f[3] is None], "something now ignores every warning"
        warnings.warn("after the export", UserWarning, stacklevel=1)

    seen = _shown_in(scenario)
    assert "the user's own warning" in seen and "after the export" in seen
    assert not [s for s in seen if "chatter" in s], seen


def test_nested_mutes_and_exceptions_unmute(monkeypatch):
    from cnndesk.core.runtime.export_cache import quiet_warnings_this_thread

    def scenario():
        with pytest.raises(RuntimeError):
            with quiet_warnings_this_thread():
                with quiet_warnings_this_thread():
                    warnings.warn("inner", UserWarning, stacklevel=1)
                warnings.warn("still muted", UserWarning, stacklevel=1)
                raise RuntimeError
        warnings.warn("shown again", UserWarning, stacklevel=1)

    assert _shown_in(scenario) == ["shown again"]


def test_parallel_decodes_keep_the_filters_and_show_no_bomb_warning(tmp_path, monkeypatch):
    from cnndesk.core.images.load import load_image

    path = tmp_path / "big.png"
    Image.new("L", (180, 180)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20_000)  # warns above 20,000 px, refuses above 40,000

    def scenario():
        load_image(path)  # installs the one filter
        before = list(warnings.filters)
        errors = []

        def work():
            try:
                for _ in range(30):
                    assert load_image(path).size == (180, 180)
            except Exception as e:  # noqa: BLE001 (reported below)
                errors.append(e)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not errors, errors
        assert list(warnings.filters) == before
        warnings.warn("unrelated", UserWarning, stacklevel=1)  # nothing left ignoring everything

    seen = _shown_in(scenario)
    assert seen == ["unrelated"], seen
