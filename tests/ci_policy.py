"""Under CI, a skipped test is a failed test, unless it lacks something CI cannot be asked for.

CI runs ./scripts/test as root on a machine that ./scripts/setup prepared, so a test that
skips there for want of FUSE, root, setpriv, a compiler, headers or an installed extra would
leave a green run that tested less than it says.  Only the skips below, whose capability
depends on the host's kernel, its configuration or its network rather than on anything setup
installs, stay skips; every other one fails, naming its reason.  (FUSE itself is checked once
at the session's start, in conftest.py, so that a machine without it fails at once.)

Loaded by tests/conftest.py; a plugin of its own so that tests/test_ci_policy.py can run it on
a test file of its making.
"""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest

UNDER_CI = os.environ.get("CI", "").lower() in ("true", "1", "yes")

# (a piece of the skip's reason, why CI may take it)
CI_MAY_SKIP: tuple[tuple[str, str], ...] = (
    ("no v1 memory hierarchy on this host",
     "most hosts mount cgroup v2 only; the comparison needs a real v1 hierarchy"),
    ("is not a real cgroup v1 hierarchy here", "the same, when the path exists but is not one"),
    ("no kernel thread with PF_NO_SETAFFINITY visible",
     "in a container's PID namespace no kernel thread is visible"),
    ("address space randomisation is off", "a host sysctl (kernel.randomize_va_space)"),
    ("uid 65534 can open this machine's /dev/fuse",
     "the host's device permissions; the test is about hosts where it cannot"),
    ("unprivileged user namespaces are not allowed here", "host policy (sysctl or AppArmor)"),
    ("kernel.unprivileged_userns_clone is 0", "host policy"),
    ("user.max_user_namespaces is 0", "host policy"),
    ("that uid 65534 may run",
     "where CI checks out (a private home) decides whether another user can run its Python"),
    ("no package index reachable", "CI may run without network; the test installs from one"),
    ("apt's package lists are not downloaded",
     "setup runs apt-get update only when it installs something"),
)  # fmt: skip


def skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # (path, line, "Skipped: reason")
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def may_skip_under_ci(reason: str) -> bool:
    return any(allowed in reason for allowed, _ in CI_MAY_SKIP)


def _fail_if_skipped(report: pytest.TestReport | pytest.CollectReport) -> None:
    if not (UNDER_CI and report.skipped) or hasattr(report, "wasxfail"):
        return
    reason = skip_reason(report)
    if may_skip_under_ci(reason):
        return
    report.outcome = "failed"
    report.longrepr = (
        f"CI={os.environ['CI']}, and this test skipped: {reason}\n"
        "CI is expected to provide this (scripts/setup, root); if a host may rightly lack it, "
        "add the reason to CI_MAY_SKIP in tests/ci_policy.py, saying why"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Generator:
    outcome = yield
    _fail_if_skipped(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator:
    """A module that skips as a whole (pytest.importorskip at its top) skips while collected."""
    outcome = yield
    _fail_if_skipped(outcome.get_result())
