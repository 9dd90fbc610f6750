"""Real pages in the controller: charge_real/uncharge_real, memory.stat, and the limit path
driven through a scripted RealMemory, under a mock clock (no /proc, no processes)."""

from __future__ import annotations

import trio

from fakecgfs.controller import (
    PAGE_SIZE,
    EventKind,
    MemCgroup,
    MemoryController,
    PageKind,
    RealKind,
)  # fmt: skip

from .conftest import EventLog, controller, trio_test, user_usage, wait_for


class ScriptedMembers:
    """A RealMemory whose members are numbers: ``held[memcg]`` pages of anon per group that
    "reclaim" can page out ``reclaimable`` of, and that oom_kill frees."""

    def __init__(self, ctl: MemoryController, reclaimable: int = 0) -> None:
        self.ctl = ctl
        self.reclaimable = reclaimable
        self.members: dict[MemCgroup, int] = {}  # group -> anon pages its one member holds
        self.calls: list[tuple[str, str]] = []
        self.frozen: set[MemCgroup] = set()

    def gain(self, memcg: MemCgroup, nr: int) -> None:
        self.members[memcg] = self.members.get(memcg, 0) + nr
        self.ctl.charge_real(memcg, RealKind.ANON, nr)

    def refresh(self, memcg: MemCgroup) -> None:
        self.calls.append(("refresh", memcg.path))

    def attached(self, memcg: MemCgroup, pid: int) -> None:
        self.calls.append(("attached", memcg.path))

    def _in(self, memcg: MemCgroup) -> list[MemCgroup]:
        return [g for g in self.members if memcg.is_ancestor_of(g)]

    def has_members(self, memcg: MemCgroup) -> bool:
        return bool(self._in(memcg))

    async def reclaim(self, memcg: MemCgroup, nr_pages: int) -> int:
        self.calls.append(("reclaim", memcg.path))
        await trio.sleep(0.001)  # the page-out runs in a thread
        freed = 0
        for group in self._in(memcg):
            take = min(self.reclaimable, self.members[group], nr_pages - freed)
            self.reclaimable -= take
            self.members[group] -= take
            freed += self.ctl.uncharge_real(group, RealKind.ANON, take)
        return freed

    async def oom_kill(self, memcg: MemCgroup, killed) -> bool:
        self.calls.append(("oom_kill", memcg.path))
        groups = [g for g in self._in(memcg) if self.members[g]]
        if not groups:
            return False
        victim = max(groups, key=lambda g: self.members[g])
        killed(victim)
        await trio.sleep(0.001)  # the victim takes a moment to exit
        self.ctl.uncharge_real(victim, RealKind.ANON, self.members.pop(victim))
        return True

    def freeze(self, memcg: MemCgroup) -> None:
        self.calls.append(("freeze", memcg.path))
        self.frozen.add(memcg)

    def thaw(self, memcg: MemCgroup) -> None:
        self.calls.append(("thaw", memcg.path))
        self.frozen.discard(memcg)


def stat(c: MemoryController, memcg: MemCgroup) -> dict[str, int]:
    return {name: value // PAGE_SIZE if not name.startswith("pg") else value
            for name, value in c.memory_stat(memcg)}  # fmt: skip


@trio_test
async def test_each_kind_shows_on_the_kernels_lines():
    expected = {
        RealKind.ANON: {"rss", "inactive_anon"},
        RealKind.ANON_LOCKED: {"rss", "unevictable"},
        RealKind.FILE: {"cache", "mapped_file", "inactive_file"},
        RealKind.FILE_LOCKED: {"cache", "mapped_file", "unevictable"},
        RealKind.SHMEM: {"cache", "shmem", "mapped_file", "inactive_anon"},
        RealKind.SHMEM_LOCKED: {"cache", "shmem", "mapped_file", "unevictable"},
        RealKind.SHMEM_UNMAPPED: {"cache", "shmem", "inactive_anon"},
        RealKind.SWAP: {"swap"},
    }
    lines = ("cache", "rss", "shmem", "mapped_file", "swap", "inactive_anon", "active_anon",
             "inactive_file", "active_file", "unevictable")  # fmt: skip
    async with controller() as c:
        for kind, shown in expected.items():
            g = c.create_group(c.root, kind.name.lower())
            c.charge_real(g, kind, 7)
            s = stat(c, g)
            assert {line for line in lines if s[line]} == shown, kind
            assert all(s[line] == 7 for line in shown)
            assert all(s[f"total_{line}"] == s[line] for line in lines)
            assert g.memory.usage == (0 if kind is RealKind.SWAP else 7)
            assert g.memsw.usage == 7
            assert c.uncharge_real(g, kind, 100) == 7  # at most what there is
            assert g.memory.usage == g.memsw.usage == 0
            assert not any(stat(c, g)[line] for line in lines)


@trio_test
async def test_real_and_simulated_pages_coexist_and_simulated_reclaim_leaves_real_ones():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        await c.charge(g, 10, PageKind.FILE)
        c.charge_real(g, RealKind.FILE, 5)
        assert stat(c, g)["cache"] == 15 and g.memory.usage == 15
        c.reclaim(g, 100, cause="test")
        assert stat(c, g)["cache"] == 5 and g.memory.usage == 5
        assert user_usage(c.root) == 5


@trio_test
async def test_numa_stat_counts_real_pages():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        c.charge_real(g, RealKind.ANON, 3)
        c.charge_real(g, RealKind.SHMEM, 2)
        c.charge_real(g, RealKind.FILE, 4)
        c.charge_real(g, RealKind.ANON_LOCKED, 1)
        assert dict(c.numa_stat(g)) == {
            "total": 10, "file": 4, "anon": 5, "unevictable": 1,
            "hierarchical_total": 10, "hierarchical_file": 4, "hierarchical_anon": 5,
            "hierarchical_unevictable": 1}  # fmt: skip


@trio_test
async def test_rmdir_hands_real_pages_to_the_parent_and_later_uncharges_find_them():
    async with controller() as c:
        parent = c.create_group(c.root, "p")
        child = c.create_group(parent, "c")
        c.charge_real(child, RealKind.SHMEM_UNMAPPED, 4)
        c.remove_group_now(child)
        assert parent.real[RealKind.SHMEM_UNMAPPED] == 4
        assert stat(c, parent)["shmem"] == 4
        assert c.uncharge_real(child, RealKind.SHMEM_UNMAPPED, 4) == 4  # the removed group
        assert user_usage(parent) == 0


@trio_test
async def test_over_the_limit_reclaims_real_pages_before_killing():
    async with controller() as c:
        members = c.real = ScriptedMembers(c, reclaimable=5)
        g = c.create_group(c.root, "g")
        await c.set_limit(g, 10)
        members.gain(g, 13)
        assert g.memory.failcnt == 1
        await wait_for(lambda: not c._enforcing)
        assert ("reclaim", "/g") in members.calls and ("oom_kill", "/g") not in members.calls
        assert g.memory.usage == 8 and g.oom_kill == 0


@trio_test
async def test_when_reclaim_cannot_help_the_largest_member_is_killed():
    async with controller() as c:
        members = c.real = ScriptedMembers(c)
        log = EventLog()
        c.subscribe(log)
        parent = c.create_group(c.root, "p")
        small, large = c.create_group(parent, "small"), c.create_group(parent, "large")
        await c.set_limit(parent, parent.memory.usage + 10)
        members.gain(small, 4)
        members.gain(large, 8)
        assert parent.memory.failcnt == 1 and not small.memory.failcnt
        await wait_for(lambda: not c._enforcing)
        assert ("oom_kill", "/p") in members.calls
        assert large not in members.members and members.members[small] == 4
        # counted in the victim's group and its ancestors, not in its siblings
        assert (parent.oom_kill, large.oom_kill, small.oom_kill, c.root.oom_kill) == (1, 1, 0, 0)
        assert [e.values["action"] for e in log.of(EventKind.OOM)] == ["kill"]


async def _frozen(c: MemoryController) -> tuple[ScriptedMembers, MemCgroup]:
    """A group with oom_kill_disable whose real members went over its limit: frozen in OOM."""
    members = c.real = ScriptedMembers(c)
    g = c.create_group(c.root, "g")
    await c.set_limit(g, 10)
    c.set_oom_kill_disable(g, True)
    members.gain(g, 12)
    await wait_for(lambda: g.under_oom())
    return members, g


@trio_test
async def test_oom_kill_disable_freezes_until_the_limit_is_raised():
    async with controller() as c:
        members, g = await _frozen(c)
        assert members.frozen == {g}
        await trio.sleep(5)
        assert g.under_oom() and members.frozen == {g}  # it waits as long as it takes
        await c.set_limit(g, 20)
        await wait_for(lambda: not g.under_oom())
        assert members.frozen == set() and ("oom_kill", "/g") not in members.calls


@trio_test
async def test_oom_kill_disable_freezes_until_pages_are_freed():
    async with controller() as c:
        members, g = await _frozen(c)
        c.uncharge_real(g, RealKind.ANON, 3)
        await wait_for(lambda: not g.under_oom())
        assert members.frozen == set()


@trio_test
async def test_turning_oom_kill_disable_off_kills_the_frozen():
    async with controller() as c:
        members, g = await _frozen(c)
        c.set_oom_kill_disable(g, False)
        await wait_for(lambda: g.oom_kill == 1)
        assert g.memory.usage == 0 and not g.under_oom() and members.frozen == set()


@trio_test
async def test_oom_notification_fires_for_real_pages():
    from fakecgfs.controller.notify import Registration, Watch

    async with controller() as c:
        c.real = ScriptedMembers(c)
        g = c.create_group(c.root, "g")
        await c.set_limit(g, 10)
        fired = []
        c.notifier.register(Registration(g, Watch.OOM, signal=lambda: fired.append(1)))
        c.real.gain(g, 11)
        await wait_for(lambda: g.oom_kill == 1)
        assert fired == [1]


@trio_test
async def test_limit_write_and_force_empty_ask_for_real_reclaim():
    async with controller() as c:
        members = c.real = ScriptedMembers(c, reclaimable=6)
        g = c.create_group(c.root, "g")
        members.gain(g, 10)
        await c.set_limit(g, 7)  # pages out 3 real pages to fit
        assert g.memory.limit == 7 and g.memory.usage <= 7
        await c.force_empty(g)  # pages out what is left to page out, then gives up
        assert g.memory.usage == 4 and members.reclaimable == 0


@trio_test
async def test_background_reclaim_counts_real_pages_it_got_back():
    async with controller() as c:
        members = c.real = ScriptedMembers(c, reclaimable=64)
        g = c.create_group(c.root, "g")
        await c.set_high_wmark(g, 40)
        c.set_low_wmark(g, 20)
        members.gain(g, 64)
        await wait_for(lambda: g.memory.usage <= 20 and g.reclaim_task.state.value == "sleeping")
        assert g.reclaim_task.stats.pages_reclaimed == 64 - g.memory.usage


@trio_test
async def test_without_real_memory_nothing_changes():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        c.refresh(g)  # no members layer: a no-op
        assert await c.reclaim_real(g, 10, cause="test") == 0
