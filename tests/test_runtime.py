"""vaeas.runtime: which precision a run trains in, from the CPU's flags."""

import torch

from vaeas.runtime import BF16_CPU_FLAGS, cpu_flags, effective_precision

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def test_cpu_flags_reads_the_first_flags_line_and_says_none_when_unknown(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: X\nflags\t\t: fpu avx512f amx_bf16\n\nprocessor\t: 1\nflags\t: fpu\n")
    assert cpu_flags(str(info)) == frozenset({"fpu", "avx512f", "amx_bf16"})
    info.write_text("processor\t: 0\n")
    assert cpu_flags(str(info)) is None
    assert cpu_flags(str(tmp_path / "absent")) is None


def test_bf16_is_kept_only_where_the_cpu_multiplies_bf16():
    for flag in BF16_CPU_FLAGS:
        assert effective_precision(CPU, "bf16", frozenset({"avx2", flag})) == ("bf16", None)
    used, note = effective_precision(CPU, "bf16", frozenset({"avx2", "avx512f"}))
    assert used == "fp32"
    assert note == ("training.precision 'bf16': this CPU has no bf16 matmul instructions "
                    "(avx512_bf16 or amx_bf16 absent from its flags); training in fp32 instead")


def test_other_precisions_devices_and_unknown_flags_are_left_as_asked(monkeypatch):
    none = frozenset({"avx2"})
    assert effective_precision(CPU, "fp32", none) == ("fp32", None)
    assert effective_precision(CUDA, "bf16", none) == ("bf16", None)       # CUDA decides for itself
    assert effective_precision(CUDA, "tf32", none) == ("tf32", None)
    monkeypatch.setattr("vaeas.runtime.cpu_flags", lambda: None)            # no /proc/cpuinfo: not refused
    assert effective_precision(CPU, "bf16") == ("bf16", None)
