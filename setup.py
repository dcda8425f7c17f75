"""Build hook: ship the repository's runtime folders as package data without moving them.

``hdl/tb``, ``hdl/synth``, ``hdl/verilog`` and ``golden`` stay at the top of the repository
(the checkout uses them in place); a wheel or a non-editable ``pip install .`` gets copies
under ``rf8sim/_data/<folder>``, where :mod:`rf8sim.infra.resources` finds them.  Everything else
is configured in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
DATA_FOLDERS = ("hdl/tb", "hdl/synth", "hdl/verilog", "hdl/tech", "golden")  # = rf8sim.infra.resources.DATA_FOLDERS
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "sim_build", "results.xml", "*.vcd")


class build_py_with_data(build_py):
    def run(self):
        super().run()
        if self.editable_mode:  # an editable install uses the checkout's folders in place
            return
        for folder in DATA_FOLDERS:
            src = ROOT / folder
            if not src.is_dir():
                raise SystemExit(f"setup.py: {src} missing; build from a complete rf8sim checkout")
            dst = Path(self.build_lib) / "rf8sim" / "_data" / folder
            if dst.exists():
                shutil.rmtree(dst)
            shutil.copytree(src, dst, ignore=SKIP)


setup(cmdclass={"build_py": build_py_with_data})
