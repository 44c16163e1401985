"""The serial fallback: every kernel compiles and runs without OpenMP (FASTIMB_NO_OPENMP=1)."""
import glob
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETUP = os.path.join(ROOT, "setup.py")


@pytest.mark.skipif(not os.path.exists(SETUP), reason="needs the source tree (setup.py)")
def test_serial_build_has_no_openmp(tmp_path):
    kernels = tmp_path / "fastimb" / "_kernels"
    kernels.mkdir(parents=True)
    (tmp_path / "fastimb" / "__init__.py").write_text("")
    shutil.copy(SETUP, tmp_path)
    for path in glob.glob(os.path.join(ROOT, "fastimb", "_kernels", "*.[ph]*")):
        if path.endswith((".pyx", ".pxd", ".py", ".h")):
            shutil.copy(path, kernels)
    # every kernel, without optimisation (this checks what is linked, and the serial
    # fallback's results; -O3 would triple the compile time)
    env = {**os.environ, "FASTIMB_NO_OPENMP": "1", "FASTIMB_REQUIRE_OPENMP": "0",
           "FASTIMB_BUILD_ONLY": "", "FASTIMB_CYTHONIZE_JOBS": "2", "FASTIMB_OPT": "-O0"}
    build = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace", "-j", "2"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    assert "WITHOUT OpenMP" in build.stdout
    code = (
        "import numpy as np\n"
        "from fastimb._kernels import _openmp_helpers as h, _gather\n"
        "assert not h.openmp_enabled()\n"
        "assert h.effective_n_threads(None) == 1 and h.effective_n_threads(-1) == 1\n"
        "X = np.arange(12.0).reshape(4, 3); out = np.empty((2, 3))\n"
        "_gather.take_rows(X, np.array([3, 0], dtype=np.intp), out, 4)\n"
        "assert (out == X[[3, 0]]).all()\n"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    # nothing built serially links an OpenMP runtime
    for so in glob.glob(str(kernels / "*.so")) if shutil.which("ldd") else []:
        ldd = subprocess.run(["ldd", so], capture_output=True, text=True)
        assert "gomp" not in ldd.stdout and "libomp" not in ldd.stdout, so
