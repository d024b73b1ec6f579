"""Builds qvl's Python extension (_qvl) with CMake: pip install --no-build-isolation .

The CMake build lives in build-python/ beside this file (Release, Ninja when available, ccache when
on PATH) and is reused by later installs, so a reinstall only rebuilds what changed. Only the
_qvl target (and the qvl library under it) is built. QVL_PYTHON_BUILD_DIR names another folder;
CMAKE_ARGS adds configure arguments; QVL_BUILD_JOBS caps parallel jobs.
"""
import os
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))


class CMakeExtension(Extension):
    def __init__(self, name):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        build_dir = os.environ.get("QVL_PYTHON_BUILD_DIR", os.path.join(ROOT, "build-python"))
        if not os.path.exists(os.path.join(build_dir, "CMakeCache.txt")):
            args = ["cmake", "-S", ROOT, "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release",
                    "-DQVL_BUILD_TESTS=OFF", "-DQVL_BUILD_BENCH=OFF", "-DQVL_BUILD_PYTHON=ON",
                    f"-DPython3_EXECUTABLE={sys.executable}"]
            if shutil.which("ninja"):
                args += ["-G", "Ninja"]
            if shutil.which("ccache"):
                args += ["-DCMAKE_CXX_COMPILER_LAUNCHER=ccache", "-DCMAKE_C_COMPILER_LAUNCHER=ccache"]
            args += os.environ.get("CMAKE_ARGS", "").split()
            subprocess.check_call(args)
        jobs = os.environ.get("QVL_BUILD_JOBS", str(os.cpu_count() or 1))
        subprocess.check_call(["cmake", "--build", build_dir, "--target", "_qvl", "-j", jobs])
        package_dir = os.path.join(build_dir, "python", "qvl")
        built = [f for f in os.listdir(package_dir) if f.startswith("_qvl.") and f.endswith(".so")]
        if len(built) != 1:
            raise RuntimeError(f"expected one _qvl*.so in {package_dir}, found {built}")
        target = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(os.path.join(package_dir, built[0]), target)


# setuptools' own staging goes beside the CMake build, not into build/ (the CMake build folder of
# the README's `make`).
setup(ext_modules=[CMakeExtension("qvl._qvl")], cmdclass={"build_ext": CMakeBuild},
      options={"build": {"build_base": os.path.join("build-python", "setuptools")}})
