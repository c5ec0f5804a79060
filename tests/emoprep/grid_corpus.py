"""A small IEMOCAP-layout corpus made of real GRID talking heads (tests/data/grid, CC BY 4.0).

Each dialog AVI is 720x480 like IEMOCAP's, one 3-second GRID clip in each
half (a real face of about 100-120 source pixels, as IEMOCAP's seated actors
show), with the clips' real speech as the sentence wavs. Besides the clean
dialog, the others hold the bad input of the face stage, one per half:

  Ses01F_impro01  left: bbaf2n               right: lbax4n, higher up    (clean; both off the paper's fixed box)
  Ses01F_impro02  left: no face (flat grey)  right: swiz3n made very dark
  Ses01F_impro03  left: bbaf2n shrunk so its face is about 12 source pixels (5 after scaling)
                  right: two faces, lbax4n and swiz3n side by side
"""

from __future__ import annotations

import subprocess
from pathlib import Path

GRID = Path(__file__).resolve().parents[1] / "data" / "grid"
CLIPS = ("bbaf2n", "lbax4n", "swiz3n")
SECONDS = 2.9  # the clips last 3.0 s; the utterances stop just short of the end
HALF = "360:480"

# dialog -> (left half filter, right half filter) over inputs [0] bbaf2n, [1] lbax4n, [2] swiz3n.
DIALOGS = {
    "Ses01F_impro01": ("[0:v]pad=360:480:0:96", "[1:v]pad=360:480:0:24"),
    "Ses01F_impro02": ("color=c=0x808080:s=360x480:r=25:d=3[l0];[l0]null",
                       "[2:v]lutrgb=r=val*0.03:g=val*0.03:b=val*0.03,pad=360:480:0:96"),
    "Ses01F_impro03": ("[0:v]scale=40:32,pad=360:480:160:200:color=0x808080",
                       "[1:v]scale=180:144[a];[2:v]scale=180:144[b];[a][b]hstack,pad=360:480:0:170"),
}
# utterance -> (dialog, audio clip index); F speaks on the left (Ses01F: the marker wearer), M on the right.
UTTERANCES = {
    "Ses01F_impro01_F000": ("Ses01F_impro01", 0), "Ses01F_impro01_M000": ("Ses01F_impro01", 1),
    "Ses01F_impro02_F000": ("Ses01F_impro02", 0), "Ses01F_impro02_M000": ("Ses01F_impro02", 2),
    "Ses01F_impro03_F000": ("Ses01F_impro03", 0), "Ses01F_impro03_M000": ("Ses01F_impro03", 1),
}


def _run(args: list[str]) -> None:
    from emoprep.media.ffmpeg_bin import ffmpeg_exe

    subprocess.run([ffmpeg_exe(), "-v", "error", "-nostdin", "-y", *args], check=True)


def _evaluation(dialog: str) -> str:
    blocks = []
    for utterance, (owner, _) in UTTERANCES.items():
        if owner == dialog:
            blocks.append(f"[0.0500 - {SECONDS:.4f}]\t{utterance}\tneu\t[2.5000, 2.5000, 2.5000]\n"
                          "C-E1:\tNeutral;\t()\nC-E2:\tNeutral;\t()\nC-E3:\tNeutral;\t()\n")
    return "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n" + "\n".join(blocks)


def build_grid_corpus(root: Path) -> Path:
    """Write the corpus under root/IEMOCAP_full_release; returns root (what `--iemocap` takes)."""
    session = root / "IEMOCAP_full_release" / "Session1"
    inputs = [arg for clip in CLIPS for arg in ("-i", str(GRID / f"{clip}.mpg"))]
    for dialog, (left, right) in DIALOGS.items():
        avi = session / "dialog" / "avi" / "DivX" / f"{dialog}.avi"
        avi.parent.mkdir(parents=True, exist_ok=True)
        graph = f"{left},fps=25[l];{right},fps=25[r];[l][r]hstack=shortest=1,format=yuv420p[v]"
        _run([*inputs, "-filter_complex", graph, "-map", "[v]", "-t", "3", "-c:v", "mpeg4", "-q:v", "3",
              "-vtag", "DIVX", "-an", str(avi)])
        evaluation = session / "dialog" / "EmoEvaluation" / f"{dialog}.txt"
        evaluation.parent.mkdir(parents=True, exist_ok=True)
        evaluation.write_text(_evaluation(dialog))
    for utterance, (dialog, clip) in UTTERANCES.items():
        wav = session / "sentences" / "wav" / dialog / f"{utterance}.wav"
        wav.parent.mkdir(parents=True, exist_ok=True)
        _run(["-i", str(GRID / f"{CLIPS[clip]}.mpg"), "-vn", "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le",
              "-t", str(SECONDS), str(wav)])
    return root
