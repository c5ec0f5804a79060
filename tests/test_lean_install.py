"""The training side imports nothing from the preprocessing side (pyproject's `train` extra is enough)."""

from __future__ import annotations

import json
import subprocess
import sys

PREP_ONLY = ("emoprep", "cv2", "face_alignment", "ffmpeg")


def test_emotrain_leaves_preprocessing_modules_unimported():
    # A fresh interpreter: this test process may already have imported emoprep for other tests.
    code = (
        "import json, sys\n"
        "import emotrain, emotrain.cli, emotrain.train, emotrain.data, emotrain.evaluate, emotrain.predict\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {PREP_ONLY!r})))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
