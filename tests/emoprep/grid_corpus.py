"""A small IEMOCAP-layout corpus made of real GRID talking heads (tests/data/grid, CC BY 4.0).

Each dialog AVI is 720x480 like IEMOCAP's, one 3-second GRID clip in each
half (a real face of about 100-120 source pixels, as IEMOCAP's seated actors
show), with the clips' real speech as the sentence wavs. Besides the clean
dialog, the others hold the bad input of the face stage, one per half:

  Ses01F_impro01  left: bbaf2n               right: lbax4n, higher up    (clean; both off the paper's fixed box)
  Ses01F_impro02  left: no face (flat grey)  right: swiz3n made very dark
  Ses01F_impro03  left: bbaf2n shrunk so its face is about 12 source pixels (5 after scaling)
                  right: two faces of about 75 source pixels, lbax4n and swiz3n side by side
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
                       "[1:v]scale=240:192,pad=360:480:0:140[a];[2:v]scale=240:192,crop=120:192:60:0[b];"
                       "[a][b]overlay=240:140"),
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


def _evaluation(utterances: dict[str, str], end: float) -> str:
    """An EmoEvaluation file: one block per utterance (id -> released label), three agreeing evaluators."""
    names = {"neu": "Neutral", "ang": "Anger", "hap": "Happiness", "sad": "Sadness"}
    blocks = [
        f"[0.0500 - {end:.4f}]\t{utterance}\t{label}\t[2.5000, 2.5000, 2.5000]\n"
        + "".join(f"C-E{i}:\t{names[label]};\t()\n" for i in (1, 2, 3))
        for utterance, label in utterances.items()
    ]
    return "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n" + "\n".join(blocks)


def write_dialog(session: Path, dialog: str, clips: list[Path], left: str, right: str,
                 utterances: dict[str, tuple[str, Path]]) -> None:
    """One dialog: its 720x480 AVI from `clips` (ffmpeg inputs [0], [1], ...) through the `left` and `right`
    filter chains, its EmoEvaluation file, and a 16 kHz sentence wav per utterance (id -> label, audio clip)."""
    avi = session / "dialog" / "avi" / "DivX" / f"{dialog}.avi"
    avi.parent.mkdir(parents=True, exist_ok=True)
    graph = f"{left},fps=25[l];{right},fps=25[r];[l][r]hstack=shortest=1,format=yuv420p[v]"
    inputs = [arg for clip in clips for arg in ("-i", str(clip))]
    _run([*inputs, "-filter_complex", graph, "-map", "[v]", "-t", "3", "-c:v", "mpeg4", "-q:v", "3",
          "-vtag", "DIVX", "-an", str(avi)])
    evaluation = session / "dialog" / "EmoEvaluation" / f"{dialog}.txt"
    evaluation.parent.mkdir(parents=True, exist_ok=True)
    evaluation.write_text(_evaluation({u: label for u, (label, _) in utterances.items()}, SECONDS))
    for utterance, (_, audio) in utterances.items():
        wav = session / "sentences" / "wav" / dialog / f"{utterance}.wav"
        wav.parent.mkdir(parents=True, exist_ok=True)
        _run(["-i", str(audio), "-vn", "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le", "-t", str(SECONDS), str(wav)])


def build_grid_corpus(root: Path) -> Path:
    """Write the corpus under root/IEMOCAP_full_release; returns root (what `--iemocap` takes)."""
    session = root / "IEMOCAP_full_release" / "Session1"
    clips = [GRID / f"{clip}.mpg" for clip in CLIPS]
    for dialog, (left, right) in DIALOGS.items():
        utterances = {u: ("neu", clips[clip]) for u, (owner, clip) in UTTERANCES.items() if owner == dialog}
        write_dialog(session, dialog, clips, left, right, utterances)
    return root
