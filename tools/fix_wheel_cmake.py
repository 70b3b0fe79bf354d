"""Point the ROS wheels' exported CMake files at this venv's Python and numpy include directories.

The PyPI ROS 2 wheels were built in a manylinux image and their ``*Export.cmake`` files name that image's
``/opt/python/cp311-cp311/...`` include paths; CMake refuses imported targets whose include directories
do not exist. Usage: ``python tools/fix_wheel_cmake.py VENV`` (idempotent).
"""

import re
import sys
import sysconfig
from pathlib import Path

import numpy


def main(venv: str) -> int:
    py_inc = sysconfig.get_paths()["include"]
    np_inc = numpy.get_include()
    pattern = re.compile(
        r"/opt/python/cp\d+-cp\d+/(include/python[\d.]+|lib/python[\d.]+/site-packages/numpy/_?core/include)"
    )

    def repl(m: re.Match) -> str:
        return py_inc if m.group(1).startswith("include") else np_inc

    changed = 0
    for f in Path(venv, "share").glob("*/cmake/*.cmake"):
        text = f.read_text()
        new = pattern.sub(repl, text)
        if new != text:
            f.write_text(new)
            changed += 1
    print(f"[setup] rewrote include paths in {changed} CMake files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
