"""The seed scenario end to end through a real mount, from the shell."""

import subprocess


def sh(script: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", script], cwd=cwd, capture_output=True, text=True)


def test_seed_scenario_from_the_shell(mnt):
    result = sh(
        """
        set -e
        mkdir demo && cd demo
        echo 64M > memory.limit_in_bytes
        echo 48M > memory.high_wmark_in_bytes
        echo 32M > memory.low_wmark_in_bytes
        echo '60M file' > fake.charge
        fakecgfs wait . --settled --timeout 20
        cat memory.usage_in_bytes
        head -n1 fake.reclaim_daemon
        cat ../fake.daemons
        """,
        mnt.path,
    )
    assert result.returncode == 0, result.stderr
    usage, state, count, group = result.stdout.split("\n")[:4]
    assert int(usage) <= 32 << 20
    assert state == "state sleeping"
    assert (count, group) == ("1", "/demo")
    assert sh("rmdir demo && cat fake.daemons", mnt.path).stdout == "0\n"
