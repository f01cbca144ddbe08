"""The CPU's vendor and instruction sets, and MKL's fast code path on non-Intel x86 CPUs.

Paddle's CPU wheel bundles Intel MKL 2019.0.5 (``libmklml_intel.so``) for its matrix products.
MKL checks the CPU vendor and, on AMD and other non-Intel CPUs, runs a generic SSE code path even
where the CPU has AVX2 and FMA: on a 2-core AMD EPYC (AVX2) sgemm ran at ~30 GFLOP/s instead of
~125, and training ResNet-18 about 2x slower (benchmarks/README.md). MKL releases before 2020.1
honour ``MKL_DEBUG_CPU_TYPE=5``, which selects the AVX2 kernels regardless of the vendor; MKL reads
it when Paddle first loads it (on the first CPU math call, not at ``import paddle``), so the
package sets it when it is imported (``paddle_catdog/__init__.py``).

Only where it is safe: an x86 CPU that is not Intel's and reports both AVX2 and FMA, and only when
the user has not set the variable themselves. ``CATDOG_MKL_FAST_PATH=0`` turns it off. On Intel
CPUs nothing changes (MKL already takes its fast path there).
"""
from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Dict, Mapping, MutableMapping, Optional, Set

SWITCH = "CATDOG_MKL_FAST_PATH"  # "0", "off", "false" or "no": leave MKL alone
MKL_VARIABLE = "MKL_DEBUG_CPU_TYPE"
MKL_AVX2 = "5"  # MKL's code for its AVX2 (Haswell) kernels
NEEDED_FLAGS = {"avx2", "fma"}


def read_cpuinfo(path: Path = Path("/proc/cpuinfo")) -> Dict[str, object]:
    """``{"vendor": ..., "model": ..., "flags": set}`` of the first processor (empty on systems
    without /proc/cpuinfo)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {"vendor": "", "model": platform.processor(), "flags": set()}
    return parse_cpuinfo(text)


def parse_cpuinfo(text: str) -> Dict[str, object]:
    fields: Dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break  # the first processor is enough
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return {"vendor": fields.get("vendor_id", ""), "model": fields.get("model name", ""),
            "flags": set(fields.get("flags", "").split())}


def wants_mkl_fast_path(info: Mapping[str, object], env: Mapping[str, str],
                        machine: Optional[str] = None) -> Optional[str]:
    """Why the fast path is (not) set, or None when it should be: off by the switch, already set
    by the user, not x86, Intel, or missing AVX2/FMA."""
    machine = (machine or platform.machine()).lower()
    if env.get(SWITCH, "").strip().lower() in ("0", "off", "false", "no"):
        return f"{SWITCH}={env[SWITCH]}"
    if MKL_VARIABLE in env:
        return f"{MKL_VARIABLE}={env[MKL_VARIABLE]} set by the user"
    if machine not in ("x86_64", "amd64", "i686", "x86"):
        return f"not an x86 CPU ({machine})"
    if info.get("vendor") == "GenuineIntel":
        return "an Intel CPU: MKL takes its fast path already"
    missing: Set[str] = NEEDED_FLAGS - set(info.get("flags", ()))
    if missing:
        return f"the CPU lacks {', '.join(sorted(missing))}"
    return None


def apply_mkl_fast_path(env: MutableMapping[str, str] = os.environ,
                        info: Optional[Mapping[str, object]] = None) -> bool:
    """Set MKL_DEBUG_CPU_TYPE=5 in ``env`` where ``wants_mkl_fast_path`` finds no reason not to;
    returns whether it did. Must run before Paddle first uses MKL."""
    info = read_cpuinfo() if info is None else info
    if wants_mkl_fast_path(info, env) is not None:
        return False
    env[MKL_VARIABLE] = MKL_AVX2
    return True


def describe(env: Mapping[str, str] = os.environ, info: Optional[Mapping[str, object]] = None) -> str:
    """One line for the start-up log: the CPU and what MKL was told."""
    info = read_cpuinfo() if info is None else info
    flags = set(info.get("flags", ()))
    isa = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if f in flags]
    cpu = f"{info.get('model') or 'unknown CPU'} ({info.get('vendor') or '?'}; {', '.join(isa) or 'no AVX2'})"
    if env.get(MKL_VARIABLE) == MKL_AVX2 and info.get("vendor") != "GenuineIntel":
        return f"{cpu}; MKL's AVX2 path forced ({MKL_VARIABLE}=5; {SWITCH}=0 turns it off)"
    reason = wants_mkl_fast_path(info, env) or "not applied"
    return f"{cpu}; MKL left as it is ({reason})"
