"""The benchmarks and the comparison command still run (tiny sizes; no timing asserted)."""
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.join(os.path.dirname(HERE), "bench")


@pytest.mark.skipif(not os.path.isdir(BENCH), reason="bench/ not shipped beside the tests")
def test_bench_suite_smoke():
    pytest.importorskip("pytest_benchmark")
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", BENCH, "--bench-size=smoke",
         "--benchmark-disable", "-x"],
        capture_output=True, text=True, cwd=BENCH, timeout=900,
    )
    assert res.returncode in (0, 5), res.stdout[-4000:] + res.stderr[-4000:]


def test_comparison_command_smoke(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "fastimb.bench", "--rows", "3000", "--features", "5",
         "--repeats", "1", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    assert (tmp_path / "results.md").exists() and (tmp_path / "results.json").exists()
    assert "DIFFERENT" not in res.stdout
