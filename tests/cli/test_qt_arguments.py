"""Qt's own command-line options reach QApplication instead of being a usage error."""

from __future__ import annotations

import subprocess
import sys

from cnndesk.qtargs import split_qt_args


def test_split_qt_args():
    assert split_qt_args(["-style", "Fusion", "a.jpg"]) == (["a.jpg"], ["-style", "Fusion"])
    assert split_qt_args(["--style=Fusion", "-reverse", "gui", "x"]) == (["gui", "x"], ["-style=Fusion", "-reverse"])
    assert split_qt_args(["classify", "-k", "3"]) == (["classify", "-k", "3"], [])
    assert split_qt_args(["-platform"]) == (["-platform"], [])  # dangling: argparse reports it


def test_cnndesk_style_fusion_is_not_a_usage_error(tmp_path):
    """`cnndesk -style Fusion --help` parses (exit 0), where it used to exit 2."""
    r = subprocess.run([sys.executable, "-m", "cnndesk", "-style", "Fusion", "gui", "--help"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "unrecognized arguments" not in r.stderr
