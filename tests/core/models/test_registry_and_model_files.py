"""The model registry, the embedded default weights, zoo downloads and user model files."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from cnndesk.core.common.errors import Cancelled, ModelError, NetworkRequiredError
from cnndesk.core.common.progress import CancelToken
from cnndesk.core.models.registry import (
    BUILTIN,
    WeightsSource,
    default_model,
    get_spec,
    list_models,
)


def test_labels_are_torchvisions_imagenet_categories():
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    assert list(default_model().labels) == list(_IMAGENET_CATEGORIES)
    assert len(default_model().labels) == 1000


def test_default_weights_fit_timm_architecture_tensor_by_tensor():
    import timm
    import torch

    spec = default_model()
    path = spec.weights.local_path()
    assert path is not None and path.is_file(), "the efficientnet-lite0 weights package is installed"
    state = torch.load(path, map_location="cpu", weights_only=True)
    target = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    assert len(state) == len(target) == 296
    for (k_src, v_src), (k_dst, v_dst) in zip(state.items(), target.items(), strict=True):
        assert tuple(v_src.shape) == tuple(v_dst.shape), (k_src, k_dst)


def test_weight_mapping_rejects_a_mismatch():
    import timm
    import torch

    from cnndesk.core.networks.build import map_state_dict

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=10)
    state = torch.load(default_model().weights.local_path(), map_location="cpu", weights_only=True)
    with pytest.raises(ModelError, match="do not fit"):
        map_state_dict(model, state, "positional")


def test_zoo_entries_match_torchvision_weights():
    from torchvision.models import get_model_weights

    for spec in BUILTIN[1:]:
        family, _, name = spec.arch.partition(":")
        assert family == "torchvision"
        weights = get_model_weights(name)
        match = [w for w in weights if w.url == spec.weights.url]
        assert match, f"{spec.name}: {spec.weights.url} is not a torchvision weights URL"
        t = match[0].transforms()
        assert spec.preprocess.resize == t.resize_size[0]
        assert spec.preprocess.crop == t.crop_size[0]
        assert spec.preprocess.interpolation == t.interpolation.value
        assert list(spec.preprocess.mean) == list(t.mean) and list(spec.preprocess.std) == list(t.std)
        assert list(spec.labels) == list(match[0].meta["categories"])
        assert spec.weights.url.rsplit("-", 1)[1].startswith(spec.weights.sha256_prefix)


def test_registry_lookup_and_unknown_names():
    assert get_spec(None).name == "efficientnet-lite0"
    assert get_spec("ResNet50").name == "resnet50"
    assert get_spec("mobilenet_v3_large").name == "mobilenet-v3-large"
    with pytest.raises(ModelError, match="unknown model 'nonsense'.*efficientnet-lite0"):
        get_spec("nonsense")
    with pytest.raises(ModelError, match="does not exist"):
        get_spec("/no/such/model.safetensors")
    names = [s.name for s in list_models()]
    assert names[:2] == ["efficientnet-lite0", "mobilenet-v3-large"] and len(names) >= 5
    for spec in list_models():
        assert spec.preprocess.crop == spec.input_size == 224
        assert spec.num_classes == 1000


def test_zoo_models_start_not_downloaded(isolated_dirs):
    spec = get_spec("resnet50")
    assert spec.needs_download and not spec.available
    assert spec.weights.cache_path() == isolated_dirs / "torch" / "hub" / "checkpoints" / "resnet50-11ad3fa6.pth"


# -- download path, against a local HTTP server -------------------------------------------------


class _Server:
    def __init__(self, folder: Path):
        handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=str(folder), **kw)  # noqa: E731
        http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
        class Quiet(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):  # a cancelled download resets
                pass

        self.httpd = Quiet(("127.0.0.1", 0), handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def weights_server(tmp_path):
    """A random MobileNetV3-Large checkpoint served over HTTP from 127.0.0.1."""
    import torch
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v3_large(weights=None)
    served = tmp_path / "served"
    served.mkdir()
    tmp = served / "tmp.pth"
    torch.save(model.state_dict(), tmp)
    sha = hashlib.sha256(tmp.read_bytes()).hexdigest()
    name = f"mobilenet_v3_large-{sha[:8]}.pth"
    tmp.rename(served / name)
    server = _Server(served)
    yield server, name, sha, model
    server.close()


def test_zoo_download_into_torch_cache_with_progress(isolated_dirs, weights_server):
    from cnndesk.core.models.download import ensure_weights
    from cnndesk.core.runtime.resolve import torch_model

    server, name, sha, reference = weights_server
    base = get_spec("mobilenet-v3-large")
    spec = base.with_weights(WeightsSource("url", name, url=server.url(name), size_mb=21, sha256_prefix=sha[:8]))
    assert spec.needs_download
    seen = []
    path = ensure_weights(spec, progress=lambda d, t, m: seen.append((d, t, m)))
    assert path == isolated_dirs / "torch" / "hub" / "checkpoints" / name
    size = path.stat().st_size
    assert seen[-1][0] == size and seen[-1][1] == size and "Downloading" in seen[-1][2]
    assert [d for d, _, _ in seen] == sorted(d for d, _, _ in seen) and len(seen) > 10
    assert not spec.needs_download and spec.available
    assert not list(path.parent.glob("*.partial"))
    model = torch_model(spec)  # loads the downloaded weights (weights_only)
    import torch

    for (k, a), b in zip(model.state_dict().items(), reference.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


def test_download_offline_says_it_needs_a_network(isolated_dirs):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spec = get_spec("resnet50").with_weights(
        WeightsSource("url", "resnet50-00000000.pth", url=f"http://127.0.0.1:{port}/r.pth", size_mb=98)
    )
    from cnndesk.core.models.download import ensure_weights

    with pytest.raises(NetworkRequiredError, match="needs a network connection") as info:
        ensure_weights(spec)
    assert "ResNet-50" in str(info.value) and "98 MB" in str(info.value)
    assert not list((isolated_dirs / "torch").rglob("*.pth*"))


def test_download_rejects_corrupt_file_and_missing_file(isolated_dirs, weights_server):
    from cnndesk.core.models.download import ensure_weights

    server, name, sha, _ = weights_server
    base = get_spec("mobilenet-v3-large")
    bad = base.with_weights(WeightsSource("url", name, url=server.url(name), sha256_prefix="deadbeef"))
    with pytest.raises(ModelError, match="corrupt"):
        ensure_weights(bad)
    gone = base.with_weights(WeightsSource("url", "x-1.pth", url=server.url("nothing-here.pth")))
    with pytest.raises(ModelError, match="404"):
        ensure_weights(gone)
    assert not list((isolated_dirs / "torch").rglob("*.pth*"))


def test_download_can_be_cancelled(isolated_dirs, weights_server):
    from cnndesk.core.models.download import ensure_weights

    server, name, sha, _ = weights_server
    spec = get_spec("mobilenet-v3-large").with_weights(WeightsSource("url", name, url=server.url(name)))
    token = CancelToken()

    def progress(done, total, msg):
        if done > 1_000_000:
            token.cancel()

    with pytest.raises(Cancelled):
        ensure_weights(spec, progress=progress, cancel=token)
    assert not list((isolated_dirs / "torch").rglob("*.pth*"))


# -- user model files -----------------------------------------------------------------------------


def _tiny_model_file(folder: Path, name="flowers"):
    import timm
    import torch

    from cnndesk.core.models.files import save_model_file

    torch.manual_seed(1)
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=3).eval()
    path = save_model_file(
        folder / f"{name}.safetensors",
        model.state_dict(),
        arch="timm:tf_efficientnet_lite0",
        labels=["daisy", "rose", "tulip"],
        preprocess=default_model().preprocess,
        name=name,
    )
    return path, model


def test_user_model_file_round_trip_and_listing(isolated_dirs):
    import numpy as np
    import torch

    from cnndesk.core.common.paths import sample_images, user_models_dir
    from cnndesk.core.predict.classifier import Classifier

    path, model = _tiny_model_file(user_models_dir())
    spec = get_spec("flowers")
    assert spec.source == "user" and spec.labels == ("daisy", "rose", "tulip")
    assert "flowers" in [s.name for s in list_models()]
    assert get_spec(str(path)).name == "flowers"
    clf = Classifier(spec, backend="torch")
    x = np.stack([clf.prepare(__import__("cnndesk.core.images.load", fromlist=["x"]).load_image(p)) for p in sample_images()])
    with torch.inference_mode():
        ref = torch.softmax(model(torch.from_numpy(x)), 1).numpy()
    got = clf.predict_arrays(x, 3)
    for row, pred in zip(ref, got, strict=True):
        assert pred.indices[0] == int(row.argmax())
        assert abs(pred.scores[0] - float(row.max())) < 1e-5
    with pytest.raises(FileExistsError):
        _tiny_model_file(user_models_dir())  # never overwritten silently
    # `cnndesk train -o elsewhere/mine.model` writes mine.model.safetensors: the name given finds it
    other, _ = _tiny_model_file(isolated_dirs, "mine.model")
    assert other.name == "mine.model.safetensors"
    assert get_spec(str(isolated_dirs / "mine.model")).weights.path == str(other)
    with pytest.raises(ModelError, match="does not exist"):
        get_spec(str(isolated_dirs / "other.model"))


def test_damaged_or_foreign_model_files_give_clear_errors(isolated_dirs):
    import numpy as np
    from safetensors.numpy import save_file

    damaged = isolated_dirs / "damaged.safetensors"
    damaged.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with pytest.raises(ModelError, match="damaged.safetensors: not a valid cnndesk model file"):
        get_spec(str(damaged))
    foreign = isolated_dirs / "foreign.safetensors"
    save_file({"w": np.zeros(3, np.float32)}, str(foreign))
    with pytest.raises(ModelError, match="not a cnndesk model"):
        get_spec(str(foreign))
    pickle = isolated_dirs / "evil.pth"
    pickle.write_bytes(b"\x80\x04cos\nsystem\n")
    with pytest.raises(ModelError):
        get_spec(str(pickle))


def test_registry_entries_carry_their_own_preprocessing():
    lite0 = default_model()
    assert (lite0.preprocess.resize, lite0.preprocess.crop) == (256, 224)
    assert lite0.preprocess.mean == (0.5, 0.5, 0.5) == lite0.preprocess.std
    assert get_spec("convnext-tiny").preprocess.resize == 236
    assert get_spec("efficientnet-b0").preprocess.interpolation == "bicubic"
    assert replace(lite0, name="x").preprocess is lite0.preprocess
