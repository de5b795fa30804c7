"""Principal axes survive the model file. numpy's eigenvectors are Fortran-ordered; safetensors
wrote their buffer as it lay, so a full model's early-stage detector (465+ training images) came
back scrambled and flagged every image as unknown (32 px symbols, 800 training images: 100 % of
its own test images). The writer now forces C order, and files written before are put right."""

from __future__ import annotations

import numpy as np
import pytest

from cnndesk.core.images.preprocess import Preprocess
from cnndesk.core.models.files import save_model_file
from cnndesk.core.trust import scores as trust


def _axes(n: int, d: int, r: int = 16) -> np.ndarray:
    z = np.random.default_rng(0).normal(size=(n, d)).astype(np.float32)
    return trust.principal_axes(z, r)


def test_eigenvector_axes_are_fortran_ordered_and_come_back_whole(tmp_path):
    from safetensors.numpy import load_file

    p = _axes(300, 40)  # n >= d: numpy's eigh
    assert p.flags["F_CONTIGUOUS"] and not p.flags["C_CONTIGUOUS"]  # what made it break
    path = save_model_file(tmp_path / "m", {"novelty.proj": p.astype(np.float16), "w": np.arange(6.0).reshape(2, 3).T},
                           arch="x", labels=["a", "b"], preprocess=Preprocess())
    back = load_file(str(path))
    np.testing.assert_allclose(back["novelty.proj"].astype(np.float32), p, atol=2e-3)
    np.testing.assert_array_equal(back["w"], np.arange(6.0).reshape(2, 3).T)


@pytest.mark.parametrize("n,d", [(300, 40), (20, 40)])
def test_axes_written_in_the_wrong_order_are_put_back(n, d):
    p = _axes(n, d).astype(np.float16)
    scrambled = np.frombuffer(np.asfortranarray(p).tobytes(order="A"), np.float16).reshape(p.shape)
    if not np.asfortranarray(p).flags["C_CONTIGUOUS"]:  # the old writer's result for a Fortran array
        assert np.abs(scrambled.astype(np.float32) - p).max() > 0.1
    np.testing.assert_allclose(trust.written_axes(scrambled), p.astype(np.float32), atol=1e-6)
    np.testing.assert_array_equal(trust.written_axes(p), p.astype(np.float32))  # right ones stay
    noise = np.random.default_rng(1).normal(size=p.shape).astype(np.float32)
    np.testing.assert_array_equal(trust.written_axes(noise), noise)  # not axes at all: left alone


def test_a_detector_read_from_an_old_file_scores_as_it_was_fitted():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(400, 300)).astype(np.float32)  # more images than values, above 128 axes
    nov = trust.fit_novelty_oof(x, np.arange(400) % 5, features="multi")[0]
    assert nov.proj is not None and nov.proj.flags["F_CONTIGUOUS"]
    tensors = nov.tensors()
    old = dict(tensors)
    p16 = tensors["novelty.proj"]
    old["novelty.proj"] = np.frombuffer(np.asfortranarray(p16).tobytes(order="A"), np.float16).reshape(p16.shape)
    fresh, read = trust.Novelty.from_file(nov.info(), tensors), trust.Novelty.from_file(nov.info(), old)
    q = rng.normal(size=(50, 300)).astype(np.float32)
    np.testing.assert_allclose(read.score(q), fresh.score(q), atol=1e-5)
