"""The CPU vendor check and MKL's fast path: set only on non-Intel x86 CPUs with AVX2 and FMA,
never over the user's own setting, off with CATDOG_MKL_FAST_PATH=0; and set in a fresh process
that imports the package on this machine when the machine is such a CPU."""
import os
import subprocess
import sys

import pytest

from paddle_catdog import cpu

AMD = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse sse2 avx avx2 fma bmi2

processor\t: 1
vendor_id\t: AuthenticAMD
"""
INTEL = AMD.replace("AuthenticAMD", "GenuineIntel").replace("AMD EPYC 7B13", "Intel Xeon")
OLD_AMD = AMD.replace(" avx2 fma", "")


def test_parse_cpuinfo_reads_the_first_processor():
    info = cpu.parse_cpuinfo(AMD)
    assert info["vendor"] == "AuthenticAMD" and info["model"] == "AMD EPYC 7B13"
    assert {"avx2", "fma"} <= info["flags"]


@pytest.mark.parametrize("text,env,machine,applied", [
    (AMD, {}, "x86_64", True),
    (INTEL, {}, "x86_64", False),                               # Intel: MKL is fast already
    (OLD_AMD, {}, "x86_64", False),                             # no AVX2/FMA: the AVX2 path would crash
    (AMD, {"CATDOG_MKL_FAST_PATH": "0"}, "x86_64", False),      # the off switch
    (AMD, {"CATDOG_MKL_FAST_PATH": "off"}, "x86_64", False),
    (AMD, {"MKL_DEBUG_CPU_TYPE": "4"}, "x86_64", False),        # the user's own choice stays
    (AMD, {}, "aarch64", False),
])
def test_fast_path_only_where_safe(text, env, machine, applied, monkeypatch):
    monkeypatch.setattr(cpu.platform, "machine", lambda: machine)
    env = dict(env)
    before = dict(env)
    assert cpu.apply_mkl_fast_path(env, cpu.parse_cpuinfo(text)) is applied
    if applied:
        assert env == {**before, "MKL_DEBUG_CPU_TYPE": "5"}
    else:
        assert env == before  # nothing changed
    assert ("forced" in cpu.describe(env, cpu.parse_cpuinfo(text))) is applied


def _fresh_process_value(**env) -> str:
    code = "import os, paddle_catdog; print(os.environ.get('MKL_DEBUG_CPU_TYPE'))"
    clean = {k: v for k, v in os.environ.items() if k not in ("MKL_DEBUG_CPU_TYPE", "CATDOG_MKL_FAST_PATH")}
    return subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True,
                          text=True, timeout=120, check=True).stdout.strip()


def test_importing_the_package_sets_it_on_this_machine_as_the_rules_say():
    # the oracle, written from /proc/cpuinfo directly: a non-Intel x86 CPU with AVX2 and FMA
    text = open("/proc/cpuinfo", encoding="utf-8").read()
    vendor = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("vendor_id")), "")
    flags = next((set(line.split(":", 1)[1].split()) for line in text.splitlines() if line.startswith("flags")), set())
    expected = "5" if vendor not in ("GenuineIntel", "") and {"avx2", "fma"} <= flags else "None"
    assert _fresh_process_value() == expected
    assert _fresh_process_value(CATDOG_MKL_FAST_PATH="0") == "None"
