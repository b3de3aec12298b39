"""Builds the native CPU core `intriguing_fast._C` (C++17, OpenMP, pybind11)."""
import os
import sys

from pybind11.setup_helpers import Pybind11Extension, build_ext
from setuptools import setup

compile_args = ["-O3", "-fopenmp", "-fno-math-errno", "-fno-trapping-math"]
# Native tuning is on by default for local builds; set INTRIGUING_FAST_PORTABLE=1 for wheels.
if os.environ.get("INTRIGUING_FAST_PORTABLE", "0") != "1" and sys.platform.startswith("linux"):
    compile_args.append("-march=native")

ext = Pybind11Extension(
    "intriguing_fast._C",
    sources=sorted(os.path.join("csrc", f) for f in os.listdir("csrc") if f.endswith(".cpp")),
    depends=sorted(os.path.join("csrc", f) for f in os.listdir("csrc") if f.endswith(".h")),  # rebuild on header edits
    include_dirs=["csrc"],
    cxx_std=17,
    extra_compile_args=compile_args,
    extra_link_args=["-fopenmp"],
)

setup(ext_modules=[ext], cmdclass={"build_ext": build_ext})
