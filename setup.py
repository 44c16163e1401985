"""Build fastimb's Cython kernels, with OpenMP where the compiler supports it.

Build switches (environment variables, read only here):

* ``FASTIMB_NO_OPENMP=1``       force a serial build;
* ``FASTIMB_REQUIRE_OPENMP=1``  fail instead of falling back to a serial build;
* ``FASTIMB_CYTHON_DEBUG=1``    compile kernels with ``boundscheck`` on;
* ``FASTIMB_CYTHON_ANNOTATE=1`` write Cython's HTML annotation next to each ``.pyx``;
* ``FASTIMB_BUILD_ONLY=a,b``    development only: build just these kernel modules
  (e.g. ``_kdtree,_brute``) so one kernel can be rebuilt while another is being edited;
* ``FASTIMB_OPT=-O1``           testing only: the optimisation flag instead of ``-O3``
  (GCC/Clang), for builds that check what is linked rather than how fast it runs.
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

OPENMP_PROBE = textwrap.dedent(
    """
    #include <omp.h>
    #include <stdio.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        printf("%d\\n", n == omp_get_max_threads());
        return 0;
    }
    """
)


def env_flag(name):
    return os.environ.get(name, "0").strip().lower() not in ("", "0", "false", "no", "off")


def openmp_flags(compiler):
    """Candidate (compile_args, link_args) for OpenMP with this compiler."""
    if compiler.compiler_type == "msvc":
        return ["/openmp"], []
    if sys.platform == "darwin":
        # Apple clang needs an external libomp (Homebrew or MacPorts, or OPENMP_PREFIX).
        prefixes = [os.environ.get("OPENMP_PREFIX"), "/opt/homebrew/opt/libomp",
                    "/usr/local/opt/libomp", "/opt/local"]
        for prefix in filter(None, prefixes):
            if os.path.isdir(os.path.join(prefix, "include")):
                return (["-Xpreprocessor", "-fopenmp", f"-I{prefix}/include"],
                        [f"-L{prefix}/lib", "-lomp", f"-Wl,-rpath,{prefix}/lib"])
        return ["-Xpreprocessor", "-fopenmp"], ["-lomp"]
    return ["-fopenmp"], ["-fopenmp"]


def openmp_works(compiler, cflags, lflags):
    """Compile, link and (when native) run a small OpenMP program with the build's compiler."""
    tmp = tempfile.mkdtemp(prefix="fastimb_omp_")
    try:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(OPENMP_PROBE)
        objects = compiler.compile([src], output_dir=tmp, extra_postargs=cflags)
        exe = os.path.join(tmp, "probe")
        compiler.link_executable(objects, exe, extra_postargs=lflags)
        if os.environ.get("_PYTHON_HOST_PLATFORM"):  # cross-compiling: cannot run it
            return True
        res = subprocess.run([exe], capture_output=True, text=True, timeout=60)
        return res.returncode == 0 and res.stdout.strip() == "1"
    except Exception as exc:  # CompileError, LinkError, OSError, TimeoutExpired
        print(f"fastimb: OpenMP probe failed: {exc!r}")
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class BuildExt(build_ext):
    def finalize_options(self):
        super().finalize_options()
        if self.parallel is None:   # the kernels compile independently: one per core
            self.parallel = os.cpu_count() or 1

    def build_extensions(self):
        cflags, lflags = openmp_flags(self.compiler)
        if not env_flag("FASTIMB_NO_OPENMP") and openmp_works(self.compiler, cflags, lflags):
            print("fastimb: building WITH OpenMP " + " ".join(cflags))
        else:
            if env_flag("FASTIMB_REQUIRE_OPENMP"):
                raise RuntimeError("FASTIMB_REQUIRE_OPENMP=1 but OpenMP is not usable "
                                   "with this compiler")
            print("fastimb: WARNING building WITHOUT OpenMP; kernels run serially")
            cflags, lflags = [], []
        if self.compiler.compiler_type == "msvc":
            opt = ["/O2", "/fp:precise"]
        else:
            # no FMA contraction: interpolation must round exactly as NumPy does
            opt = [os.environ.get("FASTIMB_OPT") or "-O3", "-ffp-contract=off"]
        for ext in self.extensions:
            ext.extra_compile_args = opt + cflags + list(ext.extra_compile_args)
            ext.extra_link_args = lflags + list(ext.extra_link_args)
        super().build_extensions()


DIRECTIVES = {
    "language_level": 3,
    "boundscheck": env_flag("FASTIMB_CYTHON_DEBUG"),
    "wraparound": False,
    "initializedcheck": False,
    "nonecheck": False,
    "cdivision": True,
    "embedsignature": True,
    "freethreading_compatible": True,
}


def kernel_extensions():
    only = {m.strip() for m in os.environ.get("FASTIMB_BUILD_ONLY", "").split(",") if m.strip()}
    exts = []
    for path in sorted(glob.glob(os.path.join("fastimb", "_kernels", "*.pyx"))):
        name = os.path.basename(path)[:-4]
        if only and name not in only:
            continue
        headers = glob.glob(os.path.join("fastimb", "_kernels", "*.h"))
        exts.append(Extension("fastimb._kernels." + name, [path], depends=headers))
    return exts


setup(
    ext_modules=cythonize(
        kernel_extensions(),
        compiler_directives=DIRECTIVES,
        annotate=env_flag("FASTIMB_CYTHON_ANNOTATE"),
        nthreads=int(os.environ.get("FASTIMB_CYTHONIZE_JOBS", os.cpu_count() or 1)),
    ),
    cmdclass={"build_ext": BuildExt},
)
