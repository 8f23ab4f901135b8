"""Build step of the wheel: ship the top-level ``conf/`` as the package data ``aidpose/conf``.

The configs stay where the design has them (``conf/`` beside ``src/``); a checkout or an editable install
reads them there, an installed wheel reads the copy through Hydra's ``pkg://aidpose.conf`` search path
(see ``aidpose.runtime.config_path``). Everything else is in ``pyproject.toml``.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CONF = Path(__file__).resolve().parent / "conf"


class BuildPyWithConf(build_py):
    """``build_py`` that also copies ``conf/**/*.yaml`` into ``<build>/aidpose/conf`` (an importable package)."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):  # an editable install reads the checkout's conf/
            return
        target = Path(self.build_lib) / "aidpose" / "conf"
        for source in sorted(CONF.rglob("*.yaml")):
            destination = target / source.relative_to(CONF)
            self.mkpath(str(destination.parent))
            self.copy_file(str(source), str(destination))
        init = target / "__init__.py"
        init.write_text(
            '"""aidpose\'s Hydra configs (a copy of the repository\'s conf/, made when the wheel was built)."""\n'
        )


setup(cmdclass={"build_py": BuildPyWithConf})
