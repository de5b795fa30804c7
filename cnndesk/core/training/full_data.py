"""Full mode's data: decoding (once into memory when it fits), transforms with augmentation,
datasets and loaders. Loader errors survive worker processes: a file that cannot be read becomes
an error marker in its batch, collected by the training loop in the main process."""

from __future__ import annotations

from dataclasses import dataclass, field
from dataclasses import replace as _replace

from cnndesk.core.common.errors import CnndeskError

MEMORY_CACHE_BYTES = 1 << 30  # decode the whole set once when its decoded images take less than this


@dataclass(frozen=True)
class LoadError:
    """What ``Images.__getitem__`` returns for an unreadable file (picklable: crosses worker processes)."""

    path: str
    reason: str


class Images:
    """(image tensor, label) per item; an unreadable file gives a :class:`LoadError` instead.
    ``cache``: path -> decoded image (or LoadError) from :func:`decode_all`, used when given."""

    def __init__(self, items, transform, min_side, cache=None):
        self.items, self.transform, self.min_side, self.cache = items, transform, min_side, cache

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        path, y = self.items[i]
        img = self.cache.get(path) if self.cache is not None else None
        if img is None:
            img = _decode(path, self.min_side)
        if isinstance(img, LoadError):
            return img
        return self.transform(img), y


def _decode(path: str, min_side: int):
    from cnndesk.core.images.load import load_image

    try:
        return load_image(path, min_side=min_side)
    except CnndeskError as exc:
        return LoadError(path, str(exc))


@dataclass
class Batch:
    x: object  # tensor or None when every image of the batch failed
    y: object
    errors: list[LoadError] = field(default_factory=list)


def collate(items) -> Batch:
    import torch

    errors = [b for b in items if isinstance(b, LoadError)]
    good = [b for b in items if not isinstance(b, LoadError)]
    if not good:
        return Batch(None, None, errors)
    return Batch(torch.stack([b[0] for b in good]), torch.tensor([b[1] for b in good]), errors)


def decode_all(items, min_side: int, max_bytes: int = MEMORY_CACHE_BYTES, cancel=None) -> dict | None:
    """Every image decoded once, kept in memory (small images: decoding and resizing every step
    otherwise costs more than the network); None when the set would not fit in ``max_bytes``."""
    from cnndesk.core.images.load import open_image

    est = 0
    for path, _ in items[:: max(1, len(items) // 32)]:  # headers of a sample: the decoded size
        try:
            with open_image(path) as im:
                w, h = im.size
        except Exception:
            continue
        scale = min(1.0, 4 * min_side / max(1, min(w, h)))  # load_image reduces big images
        est += int(w * h * scale * scale * 3)
    sampled = len(items[:: max(1, len(items) // 32)]) or 1
    if est * len(items) / sampled > max_bytes:
        return None
    cache = {}
    for path, _ in items:
        if cancel is not None and cancel.cancelled:
            return None
        cache[path] = _decode(path, min_side)
    return cache


@dataclass
class Data:
    train_set: Images
    val_set: Images
    loader: object
    val_loader: object
    plain_loader: object  # the training images without augmentation (trust data)
    sampler: object = None
    in_memory: bool = False


def transforms(pre, size: int, config):
    """(training transform with augmentation, validation transform = the app's preprocessing)."""
    import torch
    from torchvision.transforms import v2

    norm = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(pre.mean), list(pre.std))]
    aug = [v2.RandomResizedCrop(size, scale=(0.6, 1.0), antialias=True) if config.augment_crop
           else v2.Compose([v2.Resize(int(size * 256 / 224), antialias=True), v2.CenterCrop(size)])]
    if config.augment_flip:
        aug.append(v2.RandomHorizontalFlip())
    if config.augment_color:
        aug.append(v2.ColorJitter(0.2, 0.2, 0.2))
    train_tf = v2.Compose(aug + norm)
    # validation sees exactly what the app will feed the saved model: the same Preprocess code
    val_pre = _replace(pre, resize=int(size * 256 / 224), crop=size) if size != pre.crop else pre

    def val_tf(img):
        return torch.from_numpy(val_pre(img))

    return train_tf, val_tf


def load_data(ds, config, pre, size: int, rank: int = 0, world: int = 1, cancel=None) -> Data:
    import torch

    train_tf, val_tf = transforms(pre, size, config)
    min_side = int(size * 1.15)
    cache = decode_all(ds.train + ds.val, min_side, cancel=cancel) if config.cache_images else None
    train_set = Images(ds.train, train_tf, min_side, cache)
    val_set = Images(ds.val, val_tf, min_side, cache)
    g = torch.Generator().manual_seed(config.seed)
    sampler = None
    if world > 1:
        sampler = torch.utils.data.distributed.DistributedSampler(train_set, num_replicas=world, rank=rank,
                                                                  shuffle=True, seed=config.seed)
    workers = config.num_workers
    loader = torch.utils.data.DataLoader(train_set, batch_size=config.batch_size, shuffle=sampler is None,
                                         generator=g if sampler is None else None, sampler=sampler,
                                         collate_fn=collate, num_workers=workers, drop_last=len(train_set) > config.batch_size * 4)
    val_loader = torch.utils.data.DataLoader(val_set, batch_size=config.batch_size * 2, collate_fn=collate,
                                             num_workers=workers)
    plain = torch.utils.data.DataLoader(Images(ds.train, val_tf, min_side, cache), batch_size=config.batch_size * 2,
                                        collate_fn=collate, num_workers=workers)
    return Data(train_set, val_set, loader, val_loader, plain, sampler, cache is not None)
