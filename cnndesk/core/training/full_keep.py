"""Keeping the pretrained network's features while fine-tuning (issue 23): the novelty detector of
a full model reads the fine-tuned network's pooled stages, and fine-tuning reshapes them around
the user's classes, so images that only a pretrained network tells apart from those classes (other
textures next to stripes, dots, cells) land near a class. Two ways to keep them, both only while
training (classification runs the one fine-tuned network, as before):

* ``"l2sp"``: L2-SP (Li, Grandvalet & Davoine 2018) in decoupled form: after every optimizer step
  the pretrained layers' weights move back towards their starting values by ``lr x L2SP_STRENGTH``
  of the way (AdamW's weight decay, towards the pretrained weights instead of zero);
* ``"distill"``: feature-map distillation: the frozen starting network runs on the same batch and
  the stages the detector reads (``networks.multistage.early_tap_modules``) are pulled towards its
  outputs (mean squared difference relative to the teacher's mean square, weight
  DISTILL_WEIGHT); costs a forward pass of the teacher per step (the time budget counts it).

Imports torch only inside functions."""

from __future__ import annotations

L2SP_STRENGTH = 100.0  # per unit of learning rate: lr 5e-4 pulls 5 % of the way back each step
DISTILL_WEIGHT = 1.0  # next to the classification loss (relative squared error per stage, averaged)
KEEP_MODES = ("", "l2sp", "distill")


class Anchor:
    """L2-SP, decoupled: ``after_step(opt)`` after each step moves the trained pretrained parameters
    back towards their values at the start by ``lr x strength`` (the body group's current lr).
    The same interface as :class:`Distiller`: ``loss`` (none), ``after_step``, ``clear``, ``close``."""

    def __init__(self, model, head, strength: float | None = None):
        head_ids = {id(p) for p in head.parameters()}
        self.params = [p for p in model.parameters() if p.requires_grad and id(p) not in head_ids]
        self.start = [p.detach().clone() for p in self.params]
        self.strength = L2SP_STRENGTH if strength is None else strength

    def loss(self, x, n: int):
        return None

    def clear(self) -> None:
        pass

    def close(self) -> None:
        self.params, self.start = [], []

    def after_step(self, opt) -> None:
        import torch

        if not self.params:
            return
        rate = min(1.0, float(opt.param_groups[-1]["lr"]) * self.strength)
        with torch.no_grad():
            torch._foreach_lerp_(self.params, self.start, rate)


class Distiller:
    """Feature-map distillation towards a frozen copy of the starting network on the detector's
    stages. ``loss(n)`` after the student's forward pass over a batch whose first ``n`` rows are
    the user's images (the teacher sees those): mean over the stages of
    |student - teacher|^2 / |teacher|^2."""

    def __init__(self, model, taps: list, weight: float | None = None):
        import copy

        from torch.nn.modules.batchnorm import _BatchNorm

        self.weight = DISTILL_WEIGHT if weight is None else weight
        self.teacher = copy.deepcopy(model)
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.teacher.eval()  # no dropout / stochastic depth; batch statistics as the student's
        for m in self.teacher.modules():
            if isinstance(m, _BatchNorm):
                m.train()
                m.momentum = 0.0  # its running statistics stay the pretrained ones
        index = {id(m): i for i, m in enumerate(model.modules())}
        mods = list(self.teacher.modules())
        t_taps = [mods[index[id(t)]] for t in taps]
        self.student_out: list = []
        self.teacher_out: list = []
        self.handles = [t.register_forward_hook(lambda _m, _i, o: self.student_out.append(o)) for t in taps]
        self.handles += [t.register_forward_hook(lambda _m, _i, o: self.teacher_out.append(o)) for t in t_taps]

    def loss(self, x, n: int):
        import torch

        self.teacher_out.clear()
        with torch.no_grad():
            self.teacher(x[:n])
        total = 0.0
        for s, t in zip(self.student_out, self.teacher_out, strict=False):
            s, t = s[:n].float(), t.float()
            total = total + ((s - t) ** 2).mean() / ((t ** 2).mean() + 1e-6)
        k = max(1, len(self.teacher_out))
        self.student_out.clear()
        self.teacher_out.clear()
        return self.weight * total / k

    def clear(self) -> None:
        self.student_out.clear()

    def after_step(self, opt) -> None:
        pass

    def close(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []
        self.teacher = None


def keeper(mode: str, model, head, arch: str):
    """The ``train_one_epoch(keep=)`` object for ``TrainConfig.keep_pretrained`` (None: off)."""
    if not mode:
        return None
    if mode == "l2sp":
        return Anchor(model, head)
    if mode == "distill":
        from cnndesk.core.common.errors import ModelError
        from cnndesk.core.networks.multistage import early_tap_modules

        try:
            taps, _ = early_tap_modules(model, arch)
        except ModelError:
            return None
        return Distiller(model, taps)
    raise ValueError(f"keep_pretrained: {mode!r} is not one of {KEEP_MODES}")
