"""Shared fixtures: one small synthetic corpus per test session, written once and only read after.

Imports of emoprep happen inside the fixtures: emotrain's tests must run where
emoprep's media dependencies (OpenCV, ffmpeg) are not installed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

# 2 sessions x 2 dialogs x 7 utterances (~100 s of dialog, written in a few seconds): both session
# letters, an improvised pair (Ses01F_impro01, Ses01M_impro01) and a scripted one with an irregular
# name (Ses02F_script01_1, Ses02M_script01_1b); every dialog has both speakers, one utterance over
# 6 s, one under 1 s, one tied vote (released xxx) and one majority outside ang/hap/neu/sad.
SYNTH_FIXTURE = {"sessions": 2, "dialogs_per_session": 2, "utterances_per_dialog": 7, "seed": 0}


@pytest.fixture(scope="session")
def synth_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder holding IEMOCAP_full_release (what `--iemocap` takes). Treat it as read-only."""
    from emoprep.synth import generate_corpus

    out = tmp_path_factory.mktemp("synth")
    generate_corpus(out, **SYNTH_FIXTURE)
    return out


@pytest.fixture(scope="session")
def synth_plan():
    """What `synth_corpus` holds, as emoprep.synth.SynthDialog records (intended emotion per utterance)."""
    from emoprep.synth import SynthParams, plan_corpus

    return plan_corpus(SynthParams(**SYNTH_FIXTURE))
