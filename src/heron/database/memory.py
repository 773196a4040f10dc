"""How much memory this process may use: the machine's, or its container's when lower.

A container sees the host's physical memory through sysconf; what it may really use is
its cgroup's limit (`docker run --memory`, a Kubernetes limit). Sizing the embedded
server's shared_buffers from the host's memory would invite the OOM killer.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

CGROUP_ROOT = Path("/sys/fs/cgroup")
# The file holding a cgroup's memory limit: v2 (unified), then v1 (the memory controller).
_V2_LIMIT = "memory.max"
_V1_LIMIT = "memory.limit_in_bytes"


def physical_memory() -> int:
    """The machine's memory, as sysconf sees it (the host's, in a container)."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def usable_memory(
    physical: int | None = None,
    proc_cgroup: Path = Path("/proc/self/cgroup"),
    root: Path = CGROUP_ROOT,
) -> int:
    """The lowest of the machine's memory and every limit on this process's cgroups."""
    memory = physical_memory() if physical is None else physical
    try:
        membership = proc_cgroup.read_text()
    except OSError:
        return memory
    for path in limit_files(membership, root):
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit():  # v2 says "max" when there is no limit
            memory = min(memory, int(text))
    return memory


def limit_files(membership: str, root: Path = CGROUP_ROOT) -> list[Path]:
    """The limit files that bind a process whose /proc/self/cgroup reads `membership`:
    its cgroup's and every ancestor's up to the mount's root (a parent's limit binds its
    children too; inside a container the root is the container's own cgroup)."""
    files: list[Path] = []
    for line in membership.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, cgroup = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            base, name = root, _V2_LIMIT
        elif "memory" in controllers.split(","):
            base, name = root / "memory", _V1_LIMIT
        else:
            continue
        if not cgroup.startswith("/"):
            continue
        folder = PurePosixPath(cgroup)
        for part in [folder, *folder.parents]:  # "/a/b", "/a", "/"
            files.append(base / part.relative_to("/") / name)
    return list(dict.fromkeys(files))
