"""tests/ci_policy.py: under CI a skip fails unless its reason is one CI may take; elsewhere a
skip stays a skip.  Checked by running pytest with the plugin on test files made here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ci_policy import CI_MAY_SKIP

TESTS = Path(__file__).resolve().parent

CASES = """
import pytest

def test_passes():
    pass

def test_needs_a_tool():
    pytest.skip("no frobnicator installed")

@pytest.mark.skipif(True, reason="needs root")
def test_marked():
    pass

def test_host_dependent():
    pytest.skip("no v1 memory hierarchy on this host to compare with")

@pytest.mark.xfail(strict=True, reason="a known difference")
def test_known_difference():
    assert False
"""

MODULE_SKIP = 'import pytest\npytest.importorskip("no_such_module_here")\n'


def run_pytest(tmp_path: Path, ci: str | None, source: str = CASES) -> subprocess.CompletedProcess:
    (tmp_path / "test_cases.py").write_text(source)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = str(TESTS)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "ci_policy",
                           "-p", "no:cacheprovider", "-c", os.devnull, "--rootdir", str(tmp_path),
                           str(tmp_path / "test_cases.py")],
                          capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=120)  # fmt: skip


def test_under_ci_a_skip_for_a_missing_capability_fails(tmp_path):
    result = run_pytest(tmp_path, "true")
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "FAILED test_cases.py::test_needs_a_tool" in out  # skipped while running
    assert "ERROR test_cases.py::test_marked" in out  # skipped while set up
    assert "CI=true, and this test skipped: no frobnicator installed" in out
    assert "CI=true, and this test skipped: needs root" in out
    assert "SKIPPED [1] test_cases.py" in out and "no v1 memory hierarchy" in out  # allowed
    assert "XFAIL test_cases.py::test_known_difference" in out
    assert "PASSED test_cases.py::test_passes" in out
    assert out.splitlines()[-1].startswith("1 failed, 1 passed, 1 skipped, 1 xfailed, 1 error"), out


def test_outside_ci_skips_stay_skips(tmp_path):
    result = run_pytest(tmp_path, None)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].startswith("1 passed, 3 skipped, 1 xfailed")


@pytest.mark.parametrize("ci", ["true", None])
def test_a_module_that_skips_whole_fails_under_ci(tmp_path, ci):
    result = run_pytest(tmp_path, ci, MODULE_SKIP)
    if ci:
        assert result.returncode != 0, result.stdout
        assert "this test skipped: could not import 'no_such_module_here'" in result.stdout
    else:  # skipped, so nothing ran
        assert result.returncode == pytest.ExitCode.NO_TESTS_COLLECTED, result.stdout
        assert "1 skipped" in result.stdout


def test_every_allowed_skip_says_why():
    for piece, why in CI_MAY_SKIP:
        assert piece.strip() and len(why.split()) >= 2, (piece, why)
