"""setuptools hook (the project's metadata is in pyproject.toml): a wheel, and so a plain
`pip install .`, carries resources/ (labels, sample photos, icons and, when set-up or
`python -m cnndesk.prepare` made it, the default model's verified ONNX export) as
cnndesk/_resources, where ``cnndesk.core.common.paths.resources_dir`` finds it. An editable install
(`make run`, `make test`) reads resources/ in the checkout instead."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildWithResources(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        dest = Path(self.build_lib) / "cnndesk" / "_resources"
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(HERE / "resources", dest, ignore=shutil.ignore_patterns("*.tmp", ".export-*", "__pycache__"))


setup(cmdclass={"build_py": BuildWithResources})
