"""How many CPU threads an audit runs, and how they wait: chosen once, before torch starts.

PyTorch's defaults assume the machine is the process's alone: one intra-op
thread per core, and OpenMP threads that spin at every barrier. Beside one
other CPU-bound process on a 2-core machine that made a transformer-shaped
workload five times slower (issue 15): a spinning thread holds the core the
thread it waits for needs. So the entry points (the CLI, the test runner, the
benchmarks) call ``apply(choose(...))`` before anything imports torch:

- threads: ``--threads N``, else ``DISTILL_AUDIT_THREADS``, else
  ``OMP_NUM_THREADS`` (a value a scheduler or the user set), else the CPUs
  this process may really use: its affinity mask and its cgroup CPU quota,
  not the host's core count (a container on a 64-core host limited to 2 CPUs
  gets 2);
- waiting: ``OMP_WAIT_POLICY=PASSIVE`` unless the user set it, so an idle
  thread sleeps instead of spinning;
- the same count for OpenMP, MKL and torch's intra-op and inter-op pools;
  the tokenizers' own pool is switched off (``TOKENIZERS_PARALLELISM``).

OpenMP reads its environment once, when torch loads it; which is why the
policy must come first. This module never imports torch itself, so
``distill-audit --help`` stays light.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import math
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from audit.errors import AuditError

ENV_VAR = "DISTILL_AUDIT_THREADS"
MAX_THREADS = 1024  # beyond any CPU this runs on: a typo like 80000 would otherwise fail deep inside OpenMP
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")
V1_CPU_DIRS = ("cpu", "cpu,cpuacct", "cpuacct,cpu")  # where distributions mount the cgroup v1 cpu controller


@dataclass(frozen=True)
class ThreadPolicy:
    """The threads an audit uses, how idle threads wait, and where the count came from."""

    threads: int
    wait_policy: str  # OMP_WAIT_POLICY as OpenMP reads it; "unset" is OpenMP's own spin-then-sleep default
    source: str  # "--threads", "DISTILL_AUDIT_THREADS", "OMP_NUM_THREADS", "auto" or "not applied"
    usable_cpus: int

    def recorded(self) -> dict:
        """The keys the audit's hardware manifest gains."""
        return {"usable_cpus": self.usable_cpus, "threads": self.threads, "omp_wait_policy": self.wait_policy,
                "threads_source": self.source}


_applied: ThreadPolicy | None = None


# ---------------------------------------------------------------------------
# Usable CPUs
# ---------------------------------------------------------------------------


def usable_cpus(affinity: set[int] | None = None, cgroup_root: Path = CGROUP_ROOT,
                proc_cgroup: Path = PROC_CGROUP) -> int:
    """CPUs this process may really use: the affinity mask, capped by the cgroup quota, rounded down, at least 1.

    A quota of 1.5 CPUs gives 1: a second thread would wait for the quota's
    next period as surely as for a busy core.
    """
    if affinity is None:
        affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))
    quota = cgroup_cpu_quota(cgroup_root, proc_cgroup)
    allowed = len(affinity) if quota is None else min(len(affinity), quota)
    return max(1, math.floor(allowed))


def cgroup_cpu_quota(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> float | None:
    """CPUs the tightest cgroup quota on this process's path allows (quota / period); None when there is none.

    cgroup v2 writes ``cpu.max`` as "QUOTA PERIOD" ("max 100000": no quota);
    v1 writes ``cpu.cfs_quota_us`` (-1: no quota) and ``cpu.cfs_period_us``.
    A parent's quota binds its children, so every level up to the root counts.
    """
    quotas = [q for directory in _cgroup_dirs(root, proc_cgroup) if (q := _quota_in(directory)) is not None]
    return min(quotas, default=None)


def _cgroup_dirs(root: Path, proc_cgroup: Path) -> list[Path]:
    """The cgroup directories from this process's own up to each hierarchy's root (v2 and v1's cpu controller)."""
    bases: list[tuple[Path, str]] = [(root, "/")] + [(root / name, "/") for name in V1_CPU_DIRS]
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:  # "ID:CONTROLLERS:PATH"; v2's line has no controllers
        controllers, _, path = line.partition(":")[2].partition(":")
        if controllers == "":
            bases.append((root, path))
        elif "cpu" in controllers.split(","):
            bases += [(root / name, path) for name in V1_CPU_DIRS]
    dirs: list[Path] = []
    for base, path in bases:
        directory = base / path.strip("/")
        while True:
            if directory not in dirs:
                dirs.append(directory)
            if directory == base:
                break
            directory = directory.parent
    return dirs


def _quota_in(directory: Path) -> float | None:
    """The quota one cgroup directory sets, in CPUs; None where it sets none or the files are missing or odd."""
    try:
        if (directory / "cpu.max").is_file():
            quota, period = (directory / "cpu.max").read_text().split()[:2]
        else:
            quota = (directory / "cpu.cfs_quota_us").read_text().strip()
            period = (directory / "cpu.cfs_period_us").read_text().strip()
        quota_us, period_us = int(quota), int(period)
    except (OSError, ValueError):
        return None  # no such files at this level, or "max": no quota here
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


# ---------------------------------------------------------------------------
# Choosing and applying
# ---------------------------------------------------------------------------


def parse_threads(value: str | int, where: str) -> int:
    """A thread count from the command line or the environment, or one line saying what is wrong with it."""
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_THREADS:
        raise AuditError(f"{where}: {text!r} is not a number of threads (a whole number from 1 to {MAX_THREADS})")
    return int(text)


def choose(flag: str | int | None = None, environ=None, cpus: int | None = None) -> ThreadPolicy:
    """The policy for this process: ``--threads``, else DISTILL_AUDIT_THREADS, else OMP_NUM_THREADS, else usable CPUs."""
    environ = os.environ if environ is None else environ
    cpus = usable_cpus() if cpus is None else cpus
    wait = environ.get("OMP_WAIT_POLICY") or "PASSIVE"
    if flag is not None:
        return ThreadPolicy(parse_threads(flag, "--threads"), wait, "--threads", cpus)
    for variable in (ENV_VAR, "OMP_NUM_THREADS"):
        if environ.get(variable):
            return ThreadPolicy(parse_threads(environ[variable], variable), wait, variable, cpus)
    return ThreadPolicy(cpus, wait, "auto", cpus)


def apply(policy: ThreadPolicy) -> ThreadPolicy:
    """Make ``policy`` this process's: environment for OpenMP/MKL/tokenizers (and child processes), then torch.

    If torch is already imported its thread counts are set now, but OpenMP
    has read its wait policy already: the returned policy says which one it
    really runs with.
    """
    global _applied
    late = "torch" in sys.modules
    if late:
        policy = replace(policy, wait_policy=os.environ.get("OMP_WAIT_POLICY") or "unset")
    else:
        os.environ.setdefault("OMP_WAIT_POLICY", policy.wait_policy)
    count = str(policy.threads)
    os.environ["OMP_NUM_THREADS"] = count
    os.environ["MKL_NUM_THREADS"] = count
    # the fast tokenizers' own pool would be a third set of threads; the audit tokenizes little, in one thread
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _applied = policy
    if late:
        _set_torch_threads(sys.modules["torch"], policy.threads)
    else:
        _on_torch_import(policy.threads)
    return policy


def current() -> ThreadPolicy:
    """The policy this process applied; for a library caller that applied none, what the environment gives, so marked."""
    if _applied is not None:
        return _applied
    return replace(choose(), wait_policy=os.environ.get("OMP_WAIT_POLICY") or "unset", source="not applied")


def _set_torch_threads(torch, threads: int) -> None:
    torch.set_num_threads(threads)
    if torch.get_num_interop_threads() != threads:
        try:
            torch.set_num_interop_threads(threads)
        except RuntimeError:
            pass  # torch allows this once, before any inter-op work; the audit launches none, so the old pool idles


class _TorchThreadsOnImport(importlib.abc.MetaPathFinder):
    """Sets torch's thread counts the moment ``import torch`` finishes, wherever in the audit that happens."""

    def __init__(self, threads: int):
        self.threads = threads

    def find_spec(self, fullname, path, target=None):
        if fullname != "torch":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            load = spec.loader.exec_module

            def exec_module(module):
                load(module)
                _set_torch_threads(module, self.threads)

            spec.loader.exec_module = exec_module
        return spec


def _on_torch_import(threads: int) -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _TorchThreadsOnImport)]
    sys.meta_path.insert(0, _TorchThreadsOnImport(threads))
