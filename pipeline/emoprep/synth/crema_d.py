"""A synthetic CREMA-D: the real names, folders, codecs and CSV quoting, with a learnable signal.

Layout (as a git checkout of the corpus):

  CREMA-D/AudioWAV/<name>.wav                  16 kHz mono PCM_16
  CREMA-D/VideoFlash/<name>.flv                480x360, 29.97 fps, FLV1 (Sorenson H.263) + MP3 (44.1 kHz mono),
                                               stream 0 a data stream (an onXMPData tag)
  CREMA-D/VideoDemographics.csv                strings quoted, numbers not
  CREMA-D/SentenceFilenames.csv                numbers bare, names quoted, no final newline
  CREMA-D/processedResults/summaryTable.csv    every field quoted

The voice and face carry the intended emotion (the file name's); the crowd's
votes mostly agree, sometimes pick a confusable emotion and sometimes tie
(`N:S`). A few flv files have no audio stream, as some real ones had until
2020. Clips are drawn per (seed, actor, clip index), so a clip is the same
whatever order or thread writes it.

The real video is On2 VP6 (`vp6f`), which ffmpeg decodes but cannot encode (it has
no VP6 encoder), so the twin's is FLV1 in the same container. What the container
holds is the real one's: an Adobe encoder's XMP packet in a script tag (`onXMPData`)
right after `onMetaData`, which ffmpeg reads as stream 0, a data stream, then the MP3
audio (stream 1) and the video (stream 2). Being Flash video, the twin takes extract's
no-seek path (emoprep.media.container) as the real files do; but ffmpeg does seek in
FLV1, so only the real VP6 files show that `-ss 0` gives no frame at all
(tests/emoprep/test_real_crema_d.py).
"""

from __future__ import annotations

import csv
import io
import struct
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from emoprep.corpus.crema_d import (
    AUDIO_FOLDER,
    CODES,
    CORPUS_FOLDER,
    DEMOGRAPHICS,
    SENTENCE_LIST,
    SENTENCES,
    SUMMARY,
    VIDEO_FOLDER,
)
from emoprep.synth.face import FRAME_RATE
from emoprep.synth.full_frame import ActedClip, Framing, clip_audio, clip_frames
from emoprep.synth.output import (
    BITEXACT,
    TwinSummary,
    encode_video,
    generate_twin,
    remove_leftovers,
    write_wav,
)
from emoprep.synth.plan import GRID, SAMPLE_RATE
from emoprep.synth.signal import draw_face, draw_voice

GENERATOR_VERSION = 2  # 2: the flv's data stream (onXMPData) first
FRAMING = Framing(480, 360, (236, 236, 232))  # an off-white studio wall
VIDEO_QUALITY = 4  # flv -q:v
# DFA first: the one-sentence twin then has all six emotions at level XX, like most of the corpus.
TWIN_SENTENCES = ("DFA", *(s for s in SENTENCES if s != "DFA"))
LEVELLED_SENTENCE = "IEO"  # the only sentence acted at LO, MD and HI (and neutral at XX)
# A vote that is not the intended emotion goes to one of these (perceptual neighbours).
CONFUSIONS = {"A": "DN", "D": "ANF", "F": "SN", "H": "N", "N": "SH", "S": "NF"}
TIE_EVERY, TIE_AT = 11, 4  # every 11th clip (index 4, 15, ...) has a tied audio-visual vote
SILENT_EVERY, SILENT_AT = 17, 3  # every 17th clip's flv has no audio
RACES = ("Caucasian", "African American", "Asian", "Unknown")
ETHNICITIES = ("Not Hispanic", "Hispanic")


@dataclass(frozen=True)
class CremaParams:
    actors: int = 6  # 1001.., alternately male and female
    sentences: int = 2  # of TWIN_SENTENCES: DFA (6 clips per actor), IEO (16), then 6 each
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.actors <= 91:
            raise ValueError(f"actors={self.actors}: CREMA-D has 91 actors, choose 1 to 91")
        if not 1 <= self.sentences <= len(SENTENCES):
            raise ValueError(f"sentences={self.sentences}: CREMA-D has {len(SENTENCES)}, choose 1 to {len(SENTENCES)}")


@dataclass(frozen=True)
class TwinActor:
    actor_id: str  # "1001"
    gender: str
    age: int
    race: str
    ethnicity: str
    pitch: float  # Hz


@dataclass(frozen=True)
class TwinClip:
    name: str  # "1001_DFA_ANG_XX"
    actor: TwinActor
    emotion: str  # intended code, "ANG"
    votes: tuple[str, str, str]  # voice, face, audio-visual: "A", "N:S"
    levels: tuple[str, ...]  # mean rated intensity per presentation; a tied vote has one per letter ("66:50")
    flv_audio: bool
    acted: ActedClip


def _actor(params: CremaParams, number: int) -> TwinActor:
    rng = np.random.default_rng([params.seed, 0xC4E3, number])
    gender = "M" if number % 2 else "F"
    return TwinActor(
        actor_id=str(1000 + number),
        gender=gender,
        age=int(rng.integers(20, 75)),
        race=str(rng.choice(RACES)),
        ethnicity=str(rng.choice(ETHNICITIES, p=[0.85, 0.15])),
        pitch=float(rng.uniform(200, 250) if gender == "F" else rng.uniform(90, 125)),
    )


def _trials(sentence: str) -> list[tuple[str, str]]:
    """(emotion, level) acted for one sentence: every emotion at XX, or IEO's neutral plus three levels of the rest."""
    if sentence != LEVELLED_SENTENCE:
        return [(emotion, "XX") for emotion in CODES]
    return [("NEU", "XX")] + [(e, level) for e in CODES if e != "NEU" for level in ("LO", "MD", "HI")]


def _level(rng: np.random.Generator) -> str:
    """A percentage as R wrote it: two decimals at most, no trailing zeros ("57", "64.78")."""
    return f"{rng.uniform(40, 100):.2f}".rstrip("0").rstrip(".")


def _vote(rng: np.random.Generator, letter: str, tie: bool) -> str:
    if tie:
        return ":".join(sorted({letter, str(rng.choice(list(CONFUSIONS[letter])))}))
    roll = rng.random()
    if roll < 0.8:
        return letter
    if roll < 0.93:
        return str(rng.choice(list(CONFUSIONS[letter])))
    return ":".join(sorted({letter, str(rng.choice(list(CONFUSIONS[letter])))}))


def plan_crema_d(params: CremaParams) -> tuple[TwinClip, ...]:
    """Every clip, actor by actor, in the order SentenceFilenames.csv lists them."""
    clips = []
    for number in range(1, params.actors + 1):
        actor = _actor(params, number)
        trials = [(s, e, level) for s in TWIN_SENTENCES[:params.sentences] for e, level in _trials(s)]
        for index, (sentence, emotion, level) in enumerate(trials):
            rng = np.random.default_rng([params.seed, 0xC4E3, number, index])
            counter = len(clips)
            letter = emotion[0]
            style = emotion.lower()
            acted = ActedClip(
                gender=actor.gender,
                lead_samples=int(rng.integers(2, 6)) * GRID,
                voice_samples=int(rng.integers(19, 42)) * GRID,  # 1.19 .. 2.56 s
                tail_samples=int(rng.integers(2, 6)) * GRID,
                voice=draw_voice(rng, style, actor.pitch),
                face=draw_face(rng, style, actor.gender),
                noise_seed=int(rng.integers(2**62)),
            )
            votes = (_vote(rng, letter, False), _vote(rng, letter, False),
                     _vote(rng, letter, counter % TIE_EVERY == TIE_AT))
            clips.append(TwinClip(
                name=f"{actor.actor_id}_{sentence}_{emotion}_{level}",
                actor=actor,
                emotion=emotion,
                votes=votes,
                levels=tuple(":".join(_level(rng) for _ in vote.split(":")) for vote in votes),
                flv_audio=counter % SILENT_EVERY != SILENT_AT,
                acted=acted,
            ))
    return tuple(clips)


def _csv(rows: list[list[object]], quoting: int) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, quoting=quoting, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def metadata_texts(clips: tuple[TwinClip, ...]) -> dict[str, str]:
    """Relative path -> text of the three CSVs, quoted as the real files are."""
    actors = {clip.actor.actor_id: clip.actor for clip in clips}
    demographics = [["ActorID", "Age", "Sex", "Race", "Ethnicity"]] + [
        [int(a.actor_id), a.age, "Male" if a.gender == "M" else "Female", a.race, a.ethnicity]
        for a in actors.values()]
    sentences = [["Stimulus_Number", "Filename"]] + [[i, c.name] for i, c in enumerate(clips, start=1)]
    summary = [["", "FileName", "VoiceVote", "VoiceLevel", "FaceVote", "FaceLevel", "MultiModalVote",
                "MultiModalLevel"]] + [
        [i, c.name, c.votes[0], c.levels[0], c.votes[1], c.levels[1], c.votes[2], c.levels[2]]
        for i, c in enumerate(clips, start=1)]
    return {
        DEMOGRAPHICS: _csv(demographics, csv.QUOTE_NONNUMERIC),
        SENTENCE_LIST: _csv(sentences, csv.QUOTE_NONNUMERIC).rstrip("\n"),  # the real file ends without one
        f"processedResults/{SUMMARY}": _csv(summary, csv.QUOTE_ALL),
    }


def clip_paths(root: Path, clip: TwinClip) -> tuple[Path, Path]:
    return root / AUDIO_FOLDER / f"{clip.name}.wav", root / VIDEO_FOLDER / f"{clip.name}.flv"


# A minimal XMP packet of the kind Adobe's Flash encoders put in every CREMA-D flv.
XMP_PACKET = ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
              '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
              '<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
              'xmp:CreatorTool="emoprep synth"/></rdf:RDF></x:xmpmeta><?xpacket end="w"?>')
_SCRIPT_TAG = 0x12


def _amf_string(text: str) -> bytes:
    data = text.encode("utf-8")
    return struct.pack(">H", len(data)) + data


def add_xmp_data_tag(flv: Path) -> None:
    """Insert an `onXMPData` script tag after the first tag (ffmpeg's `onMetaData`), as the real files have it.

    FLV is a header, then tags each followed by its 4-byte size; ffmpeg's muxer writes no
    byte offsets (no keyframe index) by default, so nothing after the insertion moves out of place.
    """
    data = flv.read_bytes()
    first = struct.unpack(">I", data[5:9])[0] + 4  # the header's size, then PreviousTagSize0
    if data[:3] != b"FLV" or data[first] != _SCRIPT_TAG:
        raise ValueError(f"{flv}: not an FLV file that opens with a script tag")
    after = first + 11 + int.from_bytes(data[first + 1:first + 4], "big") + 4
    # AMF0: the name, then an ECMA array of one entry, liveXML -> the packet; 0x000009 ends the array.
    body = (b"\x02" + _amf_string("onXMPData") + b"\x08" + struct.pack(">I", 1)
            + _amf_string("liveXML") + b"\x02" + _amf_string(XMP_PACKET) + b"\x00\x00\x09")
    tag = bytes([_SCRIPT_TAG]) + len(body).to_bytes(3, "big") + bytes(7) + body  # timestamp 0, stream id 0
    flv.write_bytes(data[:after] + tag + struct.pack(">I", len(tag)) + data[after:])


def write_clip(root: Path, clip: TwinClip) -> None:
    """The clip's wav, then its flv (whose presence marks the clip complete)."""
    wav, flv = clip_paths(root, clip)
    remove_leftovers([wav, flv])
    write_wav(wav, clip_audio(clip.acted), SAMPLE_RATE)
    audio = {"acodec": "libmp3lame", "ar": 44100, "ac": 1, "b:a": "64k"} if clip.flv_audio else {}
    encode_video(flv, clip_frames(FRAMING, clip.acted), (FRAMING.width, FRAMING.height), FRAME_RATE,
                 wav if clip.flv_audio else None, clip.name, finish=add_xmp_data_tag, format="flv", vcodec="flv",
                 **{"q:v": VIDEO_QUALITY}, **audio, **BITEXACT)


def generate_crema_d(out: str | Path, params: CremaParams = CremaParams(), workers: int = 2,
                     progress: Callable[[TwinClip], None] | None = None) -> TwinSummary:
    """Write a synthetic CREMA-D to `out`/CREMA-D; resume one left unfinished."""
    clips = plan_crema_d(params)
    stamp = {"generator": "emoprep synth", "corpus": "crema-d", "version": GENERATOR_VERSION, **asdict(params)}
    return generate_twin(Path(out), CORPUS_FOLDER, stamp, metadata_texts(clips), clips,
                         lambda root, clip: clip_paths(root, clip)[1], write_clip, workers, progress)
