"""Packaging hook: the built-in targets/ and profiles/ YAML live at the top of the repository and are copied into
the package (edgec/targets, edgec/profiles) when a wheel is built. Everything else is in pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithYaml(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the top-level folders in place (edgec.config.loader)
        for kind in ("targets", "profiles"):
            dest = Path(self.build_lib) / "edgec" / kind
            dest.mkdir(parents=True, exist_ok=True)
            for f in sorted((Path(__file__).resolve().parent / kind).glob("*.yaml")):
                shutil.copyfile(f, dest / f.name)


setup(cmdclass={"build_py": BuildPyWithYaml})
