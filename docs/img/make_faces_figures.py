"""Draw the pictures of docs/faces.md from real GRID talking heads (CC BY 4.0).

Builds an IEMOCAP-layout corpus from the GRID clips of a folder (two clips a
dialog, one per half, placed at different heights as seated actors are), runs
`emoprep extract` (the default detector), `shard` and `inspect` on it, and
draws, on a few source frames, every face CenterFace reports (green), the crop
the track chose (yellow, the paper's 224 source pixels) and the seed paper's
fixed crop (red).

    python docs/img/make_faces_figures.py ../shared/real-media docs/img

The labels are placeholders (GRID speech is neutral): the rows of the contact
sheet show crops, not emotions.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from emoprep.media.face_crops import locate_faces  # noqa: E402
from emoprep.media.faces import DetectorSpec, build_detector, resolve  # noqa: E402
from emoprep.media.video import CROP_SIDE, half_geometry, probe, read_window  # noqa: E402
from emoprep.media.face_track import fixed_centre  # noqa: E402
from tests.emoprep.grid_corpus import write_dialog  # noqa: E402

LABELS = ("ang", "hap", "neu", "sad")
TOPS = (96, 24, 150, 60, 120, 40)  # where each dialog's clips sit in their 480-pixel halves


def build(folder: Path, root: Path) -> list[str]:
    clips = sorted(folder.glob("lipnet_grid_*.mpg"))
    if len(clips) < 4:
        sys.exit(f"{folder}: fewer than 4 lipnet_grid_*.mpg clips")
    session = root / "IEMOCAP_full_release" / "Session1"
    dialogs = []
    for index in range(len(clips) // 2):
        dialog = f"Ses01F_impro{index + 1:02d}"
        pair = clips[2 * index:2 * index + 2]
        top, other = TOPS[index % len(TOPS)], TOPS[(index + 3) % len(TOPS)]
        utterances = {f"{dialog}_F000": (LABELS[index % 4], pair[0]), f"{dialog}_M000": (LABELS[(index + 1) % 4], pair[1])}
        write_dialog(session, dialog, pair, f"[0:v]pad=360:480:0:{top}", f"[1:v]pad=360:480:0:{other}", utterances)
        dialogs.append(dialog)
    return dialogs


def emoprep(*args: str) -> None:
    subprocess.run([sys.executable, "-c", "from emoprep.cli import main; main()", *args], check=True)


def boxes_figure(root: Path, dialogs: list[str], out: Path) -> None:
    detector = build_detector(resolve(DetectorSpec()))
    rows = []
    for dialog in dialogs[:3]:
        avi = str(root / "IEMOCAP_full_release" / "Session1" / "dialog" / "avi" / "DivX" / f"{dialog}.avi")
        info = probe(avi)
        full = _source_frame(avi, 1.0, info.width, info.height)  # unscaled, to draw on
        for side in ("left", "right"):
            half = half_geometry(info, side)
            frames = read_window(avi, 0.0, 2.0, half)
            track = locate_faces(frames, detector, half, side)
            at, scale = 25, half.scale
            for box in detector.detect(frames[at:at + 1])[0]:
                _rect(full, half.x + box.x0 / scale, box.y0 / scale, half.x + box.x1 / scale, box.y1 / scale,
                      (0, 220, 0), 2)
            cx, cy = track.centres[at] / scale
            _square(full, half.x + cx, cy, track.side / scale, (0, 220, 255), 2)
            fx, fy = fixed_centre(side, half.width, half.height)
            _square(full, half.x + fx, fy, CROP_SIDE, (0, 0, 230), 1)
        rows.append(full)
    cv2.imwrite(str(out), cv2.resize(np.vstack(rows), None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA))


def _source_frame(avi: str, at: float, width: int, height: int) -> np.ndarray:
    from emoprep.media.ffmpeg_bin import ffmpeg_exe

    raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-ss", str(at), "-i", avi, "-frames:v", "1", "-f", "rawvideo",
                          "-pix_fmt", "bgr24", "pipe:"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(height, width, 3).copy()


def _rect(image: np.ndarray, x0: float, y0: float, x1: float, y1: float, colour, width: int) -> None:
    cv2.rectangle(image, (round(x0), round(y0)), (round(x1), round(y1)), colour, width)


def _square(image: np.ndarray, cx: float, cy: float, side: float, colour, width: int) -> None:
    _rect(image, cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2, colour, width)


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/real-media")
    out = Path(sys.argv[2] if len(sys.argv) > 2 else "docs/img")
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary) / "corpus"
        dialogs = build(folder, root)
        boxes_figure(root, dialogs, out / "faces-boxes.png")
        emoprep("extract", "--iemocap", str(root), "--out", f"{temporary}/work", "--workers", "1")
        emoprep("shard", "--work", f"{temporary}/work", "--out", f"{temporary}/shards")
        emoprep("inspect", f"{temporary}/shards", "--out", str(out / "faces-contact-sheet.png"), "--per-class", "4")


if __name__ == "__main__":
    main()
