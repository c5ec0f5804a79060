"""benchmarks/gpu_check.py refuses at once, in one line, where there is no CUDA device."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: the check would run")
def test_without_cuda_it_prints_one_line_and_exits_non_zero(tmp_path):
    out = tmp_path / "gpu.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--json", str(out)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("no CUDA device")
    assert not out.exists()
