"""Facts about this machine that pick devices and thread counts, without importing torch."""

from __future__ import annotations

import functools
import glob
import os
import platform
import sys


@functools.lru_cache(maxsize=1)
def physical_cores() -> int:
    """Physical cores this process may run on (hyper-threads counted once).

    Thread pools are sized from this: on these small CPUs more threads than cores made PyTorch
    up to 3x slower.
    """
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        allowed = None
    if allowed is not None:
        cores = set()
        for cpu in allowed:
            siblings = f"/sys/devices/system/cpu/cpu{cpu}/topology/core_cpus_list"
            if not os.path.exists(siblings):
                siblings = f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list"
            try:
                with open(siblings) as fh:
                    cores.add(fh.read().strip())
            except OSError:
                cores.add(str(cpu))
        return max(1, len(cores))
    logical = os.cpu_count() or 1
    # macOS/Windows: assume 2-way SMT on x86 desktops, none on Apple silicon
    if platform.machine().lower() in {"arm64", "aarch64"}:
        return logical
    return max(1, logical // 2) if logical >= 4 else logical


def nvidia_driver_present() -> bool:
    """A cheap check (no torch import) whether an NVIDIA GPU driver is installed."""
    if sys.platform.startswith("linux"):
        return os.path.exists("/proc/driver/nvidia/version") or bool(glob.glob("/dev/nvidia[0-9]*"))
    if sys.platform == "win32":
        import ctypes.util

        return ctypes.util.find_library("nvcuda") is not None
    return False


def apple_silicon() -> bool:
    return sys.platform == "darwin" and platform.machine() == "arm64"


def gpu_may_be_present() -> bool:
    """True when it is worth importing torch to look for CUDA or MPS."""
    if os.environ.get("CNNDESK_NO_GPU"):
        return False
    return nvidia_driver_present() or apple_silicon()


_allocator_tuned = False


def trim_memory() -> bool:
    """Hand the heap's free pages back to the OS (glibc ``malloc_trim``; elsewhere a no-op), e.g.
    after a big array was freed: with :func:`tune_allocator`'s thresholds, blocks under 32 MB
    come from the heap, and freed ones between live ones would otherwise stay resident.
    Returns True when called."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # musl or no libc.so.6
        return False
    return True


def tune_allocator() -> bool:
    """Keep freed image buffers in the heap instead of returning them to the OS each time.

    Decoding a photo allocates several megabytes; glibc serves such blocks with mmap and unmaps
    them on free, so every image paid page faults for fresh zeroed memory (measured: 2.4 s of
    system time for 300 six-megapixel photos, 30 % of the folder run). Raising the mmap and trim
    thresholds makes the heap reuse those buffers; peak memory grows by about 20 MB. glibc only;
    elsewhere a no-op. Returns True when applied.
    """
    global _allocator_tuned
    if _allocator_tuned:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        ok = libc.mallopt(m_mmap_threshold, 32 << 20) == 1
        ok = libc.mallopt(m_trim_threshold, 64 << 20) == 1 and ok
    except (OSError, AttributeError):  # musl or no libc.so.6
        return False
    _allocator_tuned = ok
    return ok


@functools.lru_cache(maxsize=1)
def has_torch() -> bool:
    """False in the torch-free "lite" build: full training, Grad-CAM, the layer explorer and
    export need the full build; classification, the camera, quick training and occlusion do not."""
    import importlib.util

    return importlib.util.find_spec("torch") is not None


FULL_ONLY = "needs the full version of cnndesk (this lite version has no PyTorch)"
