"""The embedded server is sized from a container's memory limit, not the host's memory."""

from __future__ import annotations

from pathlib import Path

from heron.database.memory import limit_files, usable_memory

GB = 2**30


def cgroups(tmp_path: Path, membership: str, limits: dict[str, str]) -> Path:
    """A /proc/self/cgroup reading `membership` and a cgroup mount holding `limits`."""
    for relative, value in limits.items():
        path = tmp_path / "cgroup" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{value}\n")
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(membership)
    return proc


def test_a_v2_limit_below_the_machines_memory_wins(tmp_path: Path) -> None:
    proc = cgroups(
        tmp_path,
        "0::/system.slice/heron.service\n",
        {"system.slice/heron.service/memory.max": str(2 * GB)},
    )
    assert usable_memory(24 * GB, proc, tmp_path / "cgroup") == 2 * GB


def test_a_parents_limit_binds_its_children(tmp_path: Path) -> None:
    proc = cgroups(
        tmp_path,
        "0::/kubepods/pod1/heron\n",
        {"kubepods/pod1/heron/memory.max": "max", "kubepods/pod1/memory.max": str(GB)},
    )
    assert usable_memory(24 * GB, proc, tmp_path / "cgroup") == GB


def test_inside_a_container_the_mounts_root_is_its_own_cgroup(tmp_path: Path) -> None:
    # With a cgroup namespace the process sees "/" and the limit sits at the mount's root.
    proc = cgroups(tmp_path, "0::/\n", {"memory.max": str(3 * GB)})
    assert usable_memory(24 * GB, proc, tmp_path / "cgroup") == 3 * GB


def test_a_v1_memory_controller_limit_counts(tmp_path: Path) -> None:
    proc = cgroups(
        tmp_path,
        "5:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n0::/\n",
        {
            "memory/docker/abc/memory.limit_in_bytes": str(GB),
            "memory/memory.limit_in_bytes": "9223372036854771712",  # v1's "no limit"
        },
    )
    assert usable_memory(24 * GB, proc, tmp_path / "cgroup") == GB


def test_no_limit_leaves_the_machines_memory(tmp_path: Path) -> None:
    proc = cgroups(tmp_path, "0::/user.slice\n", {"user.slice/memory.max": "max"})
    assert usable_memory(24 * GB, proc, tmp_path / "cgroup") == 24 * GB
    assert usable_memory(24 * GB, tmp_path / "no-such-file", tmp_path / "cgroup") == 24 * GB


def test_limit_files_skip_controllers_other_than_memory() -> None:
    files = limit_files("3:cpu:/a\n1:name=systemd:/\n", Path("/cg"))
    assert files == []
