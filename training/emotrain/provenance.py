"""What an experiment folder keeps so that its table can be regenerated: commands and environment.

Every invocation of `emotrain experiment` appends one JSON line to DIR/provenance.jsonl: the time,
the command as typed (argv) and as a complete command line with every option spelled out, the mode,
and the environment it ran in (Python, platform, package versions, the source tree's git commit and
whether it had uncommitted changes, the device). Runs spread over several machines each append their
own line, so the folder says which machine trained what.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import torch

PACKAGES = ("emoav", "torch", "torchvision", "numpy", "webdataset", "soundfile", "pillow", "matplotlib")
PROVENANCE_FILE = "provenance.jsonl"


def environment(device: str) -> dict:
    """Versions, commit and device of this process (`device` as configured: auto, cpu or cuda)."""
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    cuda = torch.cuda.is_available()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
        "git": git_state(Path(__file__).resolve().parent),
        "device": {
            "configured": device,
            "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
            "cuda_version": torch.version.cuda,
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
        },
    }


def git_state(folder: Path) -> dict:
    """The commit of the git work tree holding `folder`, and whether it has uncommitted changes.

    {"commit": None} when emotrain is not run from a git checkout (an installed wheel).
    """
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def record_invocation(out: Path, *, command: str, mode: str, device: str, units: int) -> dict:
    """Append this invocation to OUT/provenance.jsonl; returns the record."""
    record = {
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "argv": list(sys.argv),
        "command": command,
        "mode": mode,
        "units": units,
        "environment": environment(device),
    }
    # One short line in append mode: several processes sharing OUT do not interleave their records.
    with open(Path(out) / PROVENANCE_FILE, "a", encoding="utf-8") as file:
        file.write(json.dumps(record) + "\n")
    return record


def read_provenance(out: Path) -> list[dict]:
    path = Path(out) / PROVENANCE_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
