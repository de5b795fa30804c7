"""The command line's one table and its single sources: sub-commands are rows of ``COMMANDS``; the
device list, the default model and the training defaults come from the core, not from literals."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cnndesk.cli import COMMANDS, build_parser, main


def _parse(*argv):
    return build_parser(only=argv[:1]).parse_args(list(argv))


def test_every_row_is_a_sub_command_with_its_help(capsys):
    assert list(COMMANDS) == ["gui", "classify", "train", "export", "explain", "merge", "doctor", "label", "models", "cache", "undo"]
    with pytest.raises(SystemExit):
        main(["--help"])
    top = " ".join(capsys.readouterr().out.split())
    for name, command in COMMANDS.items():
        assert f"{name} {' '.join(command.help.split()[:4])}" in top
        with pytest.raises(SystemExit) as exit_:
            main([name, "--help"])
        assert exit_.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith(f"usage: cnndesk {name}") and "options:" in out


def test_train_defaults_are_train_configs():
    from cnndesk.core.training.config import TrainConfig

    args, cfg = _parse("train", "data", "--out", "m"), TrainConfig()
    fields = {"mode": "mode", "base": "base", "epochs": "epochs", "lr": "lr", "batch_size": "batch_size",
              "val_split": "val_split", "seed": "seed", "unfrozen_blocks": "unfrozen_blocks",
              "image_size": "image_size", "device": "device", "init_from": "init_from", "flip": "augment_flip",
              "time_budget": "time_budget_s"}
    assert {k: getattr(args, k) for k in fields} == {k: getattr(cfg, f) for k, f in fields.items()}


def test_device_choices_and_default_model_come_from_the_core():
    from cnndesk.core.models.registry import DEFAULT_MODEL
    from cnndesk.core.runtime.devices import DEVICES

    for cmd in (["classify", "x.jpg"], ["train", "d", "-o", "m"], ["doctor", "d"]):
        parser = build_parser(only=cmd[:1])
        sub = next(a for a in parser._subparsers._group_actions[0].choices[cmd[0]]._actions if a.dest == "device")
        assert tuple(sub.choices) == tuple(DEVICES)
    assert _parse("doctor", "d").base == DEFAULT_MODEL
    assert DEFAULT_MODEL in build_parser(only=["classify"])._subparsers._group_actions[0].choices["classify"].format_help()


def test_unknown_device_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "d", "-o", "m", "--device", "tpu"])
    assert exit_.value.code == 2 and "invalid choice: 'tpu'" in capsys.readouterr().err


def test_the_app_and_help_paths_build_no_core_options():
    """`cnndesk` (the app) and `cnndesk --help` parse without importing the training or inference
    modules that other commands' defaults come from (they cost start-up time)."""
    code = ("import sys\nfrom cnndesk.cli import build_parser\n"
            "build_parser(only=['gui']).parse_args(['gui'])\n"
            "print(sorted(m for m in ('cnndesk.core.training.dispatch', 'cnndesk.core.predict.classifier', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name,needle", [("explain", "cnndesk: Grad-CAM "), ("train", "cnndesk: full fine-tuning "),
                                         ("label", "cnndesk: full training "), ("models", "cnndesk: this ")])
def test_a_missing_torch_is_one_line_naming_what_still_works(name, needle, monkeypatch, capsys):
    import dataclasses

    from cnndesk import cli
    from cnndesk.core.common.system import FULL_ONLY

    def no_torch(args):
        raise ModuleNotFoundError("No module named 'torch'", name="torch")

    argv = {"explain": ["explain", "x.jpg", "-o", "o.png"], "train": ["train", "d", "-o", "m"], "models": ["models"],
            "label": ["label", "d", "--train", "m", "--train-mode", "full"]}[name]
    monkeypatch.setitem(cli.COMMANDS, name, dataclasses.replace(cli.COMMANDS[name], run=no_torch))
    assert main(argv) == 3
    err = capsys.readouterr().err
    assert err.startswith(needle + FULL_ONLY) and err.count("\n") == 1
    assert ("--method occlusion" in err) == (name == "explain") and ("--mode quick" in err) == (name == "train")
    assert ("--train-mode quick" in err) == (name == "label")  # lite: label --train-mode full names the way that works


def test_another_missing_module_is_an_unexpected_error(monkeypatch, capsys, tmp_path):
    import dataclasses

    from cnndesk import cli

    def missing(args):
        raise ModuleNotFoundError("No module named 'somethingelse'", name="somethingelse")

    monkeypatch.setenv("CNNDESK_DATA_DIR", str(tmp_path))
    monkeypatch.setitem(cli.COMMANDS, "models", dataclasses.replace(cli.COMMANDS["models"], run=missing))
    assert main(["models"]) == 1
    assert "somethingelse" in capsys.readouterr().err
