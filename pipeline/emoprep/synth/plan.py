"""What a synthetic corpus contains: dialogs, utterances, timings, evaluations. Pure: no media.

Each dialog is drawn from a numpy generator seeded by (seed, dialog name) and
each utterance's voice and face from (seed, dialog name, index), so a dialog
comes out the same whatever order or thread it is written in.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass

import numpy as np
from shardformat import SAMPLE_RATE  # the format's rate, defined once

from emoprep.corpus.iemocap import KEPT_EMOTIONS, NO_MAJORITY, category_code, speaker_side
from emoprep.synth.signal import FaceParams, VoiceParams, draw_face, draw_voice

# Utterance times lie on a 1/16 s grid (1,000 samples): exact in 4 decimals and in binary,
# so round(), floor() and int() of `seconds * 16000` all give the same sample index.
GRID = SAMPLE_RATE // 16

# Categories that get a clear external majority besides the four kept ones (IEMOCAP has many).
OTHER_MAJORITIES = ("fru", "exc", "sur")
# Per dialog: about this share of utterances with a tied vote (released xxx), and with a majority outside the four.
TIE_SHARE = 0.10
OTHER_SHARE = 0.12

# The words evaluators write, per three-letter code (first is the usual one).
_WORDS = {
    "neu": ("Neutral", "Neutral state"),
    "hap": ("Happiness",),
    "exc": ("Excited",),
    "sad": ("Sadness",),
    "ang": ("Anger",),
    "fru": ("Frustration",),
    "sur": ("Surprise",),
    "fea": ("Fear",),
    "dis": ("Disgust",),
    "oth": ("Other", "Other:amused", "Other:sarcastic", "Other:bored"),
}
# Plausible disagreements: what a dissenting evaluator says instead of the true category.
_CONFUSIONS = {
    "ang": ("fru", "dis", "neu"),
    "hap": ("exc", "neu", "sur", "oth"),
    "neu": ("fru", "sad", "hap", "oth"),
    "sad": ("neu", "fru", "fea"),
    "fru": ("ang", "neu", "sad"),
    "exc": ("hap", "sur", "neu"),
    "sur": ("exc", "hap", "fea"),
}
# Typical valence / activation / dominance (1..5) per category, for the `A-` lines.
_DIMENSIONS = {
    "ang": (1.5, 4.2, 4.0),
    "hap": (4.2, 3.4, 3.2),
    "neu": (3.0, 2.4, 2.8),
    "sad": (1.8, 1.8, 2.0),
    "fru": (2.0, 3.4, 3.0),
    "exc": (4.3, 4.0, 3.4),
    "sur": (3.5, 3.8, 2.8),
}
_EXTERNAL_POOL = ("E1", "E2", "E3", "E4", "E5", "E6")
_TEXT_WORDS = (
    "well i think we should talk about it now okay you know what that is not the point right "
    "yes no maybe really listen this was all my idea and your fault again tomorrow here there "
    "never always just so fine sure wait look"
).split()
_BACKCHANNELS = ("[LAUGHTER]", "Mm-hmm.", "[BREATHING]", "Yeah.")


@dataclass(frozen=True)
class Judgement:
    """One `C-` line: who judged, the category words as written, the free comment."""

    evaluator: str  # "E2" (external), "F1" / "M1" (the actor's self-evaluation)
    words: tuple[str, ...]  # ("Neutral state",), ("Neutral", "Anger"), ("Other:amused",)
    comment: str = ""


@dataclass(frozen=True)
class Rating:
    """One `A-` line: a dimensional rating, each 1..5."""

    evaluator: str
    valence: int
    activation: int
    dominance: int


@dataclass(frozen=True)
class SynthUtterance:
    utterance_id: str
    start_sample: int  # in the dialog audio, on the GRID
    end_sample: int  # exclusive
    gender: str  # "F" / "M": the speaker
    side: str  # "left" / "right": emoprep.corpus.iemocap.speaker_side
    emotion: str  # what the voice and face express: the external majority, or one of the tied categories
    released_label: str  # the external majority, or xxx when the vote is tied
    external: tuple[Judgement, ...]
    self_evaluations: tuple[Judgement, ...]
    ratings: tuple[Rating, ...]  # external raters first, then the actor
    text: str
    voice: VoiceParams
    face: FaceParams

    @property
    def start(self) -> float:
        return self.start_sample / SAMPLE_RATE

    @property
    def end(self) -> float:
        return self.end_sample / SAMPLE_RATE

    @property
    def channel(self) -> int:
        """The dialog-audio channel carrying the speaker's microphone: 0 for the left actor, 1 for the right."""
        return 0 if self.side == "left" else 1


@dataclass(frozen=True)
class Backchannel:
    """A transcription line with an `..._FXX0`-style id: a listener's noise, never labelled."""

    utterance_id: str
    start_sample: int
    end_sample: int
    text: str


@dataclass(frozen=True)
class SynthDialog:
    name: str  # "Ses01F_impro01", "Ses02M_script01_1b"
    session: int
    improvised: bool
    n_samples: int  # length of the dialog audio
    noise_seed: int  # the microphones' noise floor
    utterances: tuple[SynthUtterance, ...]  # in time order, never overlapping
    backchannels: tuple[Backchannel, ...]


@dataclass(frozen=True)
class SynthParams:
    sessions: int = 5
    dialogs_per_session: int = 2
    utterances_per_dialog: int = 26
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.sessions <= 5:
            raise ValueError(f"sessions={self.sessions}: IEMOCAP has sessions 1..5, choose 1 to 5")
        if self.dialogs_per_session < 1:
            raise ValueError(f"dialogs_per_session={self.dialogs_per_session}: need at least 1")
        if self.utterances_per_dialog < 4:
            raise ValueError(
                f"utterances_per_dialog={self.utterances_per_dialog}: need at least 4 "
                "(both speakers, one utterance over 6 s and one under 1 s per dialog)"
            )


def _dialog_key(name: str, taken: set[int]) -> int:
    """A stable integer seed for a dialog (numpy seeds take ints, and hash() is salted per process).

    The name's bytes read as an integer, which keeps only its first 8 characters: the key every
    synthetic corpus so far was made with, kept so that they stay byte for byte. Names that share
    those 8 characters (Ses02M_impro01a, Ses02M_impro02) would then get identical utterances, so
    a name whose key is `taken` by an earlier dialog gets one from its SHA-256 instead.
    """
    key = int.from_bytes(name.encode(), "little") % (2**63)
    if key in taken:
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little") % (2**63)
    return key


def dialog_names(session: int, count: int) -> list[tuple[str, bool]]:
    """(name, improvised) of a session's dialogs, in pairs that share a stem as in IEMOCAP.

    Pair k of the corpus (counted over sessions) is scripted when k % 4 == 1; the
    M dialog of a scripted pair is named `..._script01_1b` and of a pair with
    k % 4 == 2 `..._impro02a`, as IEMOCAP's irregular names are.
    """
    pairs_per_session = (count + 1) // 2
    names = []
    impro = script = 0
    for index in range(pairs_per_session):
        pair = (session - 1) * pairs_per_session + index
        if pair % 4 == 1:
            script += 1
            stem, irregular, improvised = f"script{(script - 1) // 3 + 1:02d}_{(script - 1) % 3 + 1}", "b", False
        else:
            impro += 1
            stem, irregular, improvised = f"impro{impro:02d}", "a" if pair % 4 == 2 else "", True
        names.append((f"Ses{session:02d}F_{stem}", improvised))
        names.append((f"Ses{session:02d}M_{stem}{irregular}", improvised))
    return names[:count]


def count_votes(judgements: tuple[Judgement, ...]) -> Counter[str]:
    """Votes per category code: each evaluator votes once for each category they list."""
    votes: Counter[str] = Counter()
    for judgement in judgements:
        votes.update({category_code(word) for word in judgement.words})
    return votes


def released_label(external: tuple[Judgement, ...]) -> str:
    """The category more than half the external evaluators chose, alone at the top, else xxx.

    "Alone": with multi-category answers two categories can both pass half (`Anger;`,
    `Frustration;`, `Anger; Frustration;`); that is a tie, released as xxx.
    """
    (category, top), *rest = count_votes(external).most_common()
    unique = not rest or rest[0][1] < top
    return category if unique and top * 2 > len(external) else NO_MAJORITY


def _word(rng: np.random.Generator, category: str) -> str:
    """The usual word most of the time; a variant ("Neutral state", "Other:amused") often enough to be seen."""
    words = _WORDS[category]
    if len(words) > 1 and rng.random() < 0.3:
        return words[int(rng.integers(1, len(words)))]
    return words[0]


def _comment(rng: np.random.Generator) -> str:
    return "" if rng.random() < 0.8 else str(rng.choice(["curious", "a bit tense", "sarcastic, attitude"]))


def _external_ids(rng: np.random.Generator, count: int) -> list[str]:
    return sorted(rng.choice(_EXTERNAL_POOL, size=count, replace=False).tolist())


def _majority_votes(rng: np.random.Generator, category: str) -> list[list[str]]:
    """Category codes per external evaluator such that `category` has a strict majority."""
    evaluators = 3 if rng.random() < 0.8 else 4
    agreeing = evaluators if rng.random() < 0.5 else evaluators - 1
    lists = [[category] for _ in range(agreeing)]
    lists += [[str(rng.choice(_CONFUSIONS[category]))] for _ in range(evaluators - agreeing)]
    for votes in lists[:agreeing]:
        if rng.random() < 0.15:  # an evaluator who saw two things: "Neutral; Anger;"
            votes.append(str(rng.choice(_CONFUSIONS[category])))
    return [lists[i] for i in rng.permutation(evaluators)]


def _tied_votes(rng: np.random.Generator) -> tuple[list[list[str]], str]:
    """Votes with no majority (1-1-1 of three, or 2-2 of four) and the tied category the media express."""
    first = str(rng.choice(KEPT_EMOTIONS))
    if rng.random() < 0.5:
        second, third = rng.choice([c for c in _CONFUSIONS if c != first], size=2, replace=False)
        lists = [[first], [str(second)], [str(third)]]
    else:
        second = str(rng.choice([c for c in _CONFUSIONS if c != first]))
        lists = [[first], [first], [second], [second]]
    return [lists[i] for i in rng.permutation(len(lists))], first


def _self_evaluation(
    rng: np.random.Generator, gender: str, emotion: str, votes: Counter[str]
) -> tuple[Judgement, ...]:
    """The speaker's own judgement: often a category the externals did not pick, so counting it changes results."""
    if rng.random() < 0.1:
        return ()
    if rng.random() < 0.5:
        category = emotion
    else:
        # Prefer a category the externals voted for too: counted by mistake, it ties or overturns the vote.
        rivals = [c for c in votes if c != emotion] or [c for c in _CONFUSIONS[emotion]]
        category = str(rng.choice(rivals))
    return (Judgement(f"{gender}1", (_word(rng, category),), _comment(rng)),)


def _ratings(rng: np.random.Generator, emotion: str, gender: str) -> tuple[Rating, ...]:
    base = np.array(_DIMENSIONS[emotion])

    def one(evaluator: str) -> Rating:
        values = np.clip(np.rint(base + rng.normal(0, 0.6, 3)), 1, 5).astype(int)
        return Rating(evaluator, int(values[0]), int(values[1]), int(values[2]))

    return tuple(one(e) for e in _external_ids(rng, 2)) + (one(f"{gender}1"),)


def _text(rng: np.random.Generator) -> str:
    words = rng.choice(_TEXT_WORDS, size=int(rng.integers(3, 10))).tolist()
    return " ".join(words).capitalize() + str(rng.choice([".", "?", "!", "."]))


def _scenarios(rng: np.random.Generator, count: int) -> list[str]:
    """Per utterance: a kept category (balanced), one of OTHER_MAJORITIES, or "tie"; at least one tie and one other."""
    ties = max(1, round(TIE_SHARE * count))
    others = max(1, round(OTHER_SHARE * count))
    kept = count - ties - others
    offset = int(rng.integers(len(KEPT_EMOTIONS)))
    scenarios = [KEPT_EMOTIONS[(offset + i) % len(KEPT_EMOTIONS)] for i in range(kept)]
    scenarios += ["tie"] * ties + [str(rng.choice(OTHER_MAJORITIES)) for _ in range(others)]
    return [scenarios[i] for i in rng.permutation(count)]


def _speakers(rng: np.random.Generator, count: int) -> list[str]:
    """Turn-taking: mostly alternating, sometimes the same speaker twice; both always speak."""
    speakers = [str(rng.choice(["F", "M"]))]
    for _ in range(count - 1):
        previous = speakers[-1]
        speakers.append(previous if rng.random() < 0.2 else ("M" if previous == "F" else "F"))
    if len(set(speakers)) == 1:
        speakers[-1] = "M" if speakers[0] == "F" else "F"
    return speakers


def _durations(rng: np.random.Generator, count: int) -> list[int]:
    """Lengths in grid steps: mostly 1.25-3.5 s, one over 6 s (up to 8 s) and one under 1 s per dialog."""
    steps = rng.integers(20, 57, size=count)  # 1.25 .. 3.5 s
    long_index, short_index = rng.choice(count, size=2, replace=False)
    steps[long_index] = rng.integers(100, 129)  # 6.25 .. 8.0 s
    steps[short_index] = rng.integers(8, 16)  # 0.5 .. 0.9375 s
    return [int(s) for s in steps]


def plan_dialog(name: str, session: int, improvised: bool, count: int, seed: int,
                voices: dict[str, float], key: int) -> SynthDialog:
    """One dialog's utterances and backchannels. `voices`: each speaker's base pitch (Hz) by gender;
    `key`: the dialog's own seed (_dialog_key)."""
    rng = np.random.default_rng([seed, key])
    scenarios = _scenarios(rng, count)
    speakers = _speakers(rng, count)
    durations = _durations(rng, count)
    numbers: Counter[str] = Counter()
    position = int(rng.integers(16, 33)) * GRID  # 1 .. 2 s of silence before the first utterance
    utterances = []
    for index, (scenario, gender, steps) in enumerate(zip(scenarios, speakers, durations)):
        utterance_id = f"{name}_{gender}{numbers[gender]:03d}"
        numbers[gender] += 1
        if scenario == "tie":
            vote_lists, emotion = _tied_votes(rng)
        else:
            emotion = scenario
            vote_lists = _majority_votes(rng, emotion)
        external = tuple(
            Judgement(evaluator, tuple(_word(rng, c) for c in votes), _comment(rng))
            for evaluator, votes in zip(_external_ids(rng, len(vote_lists)), vote_lists)
        )
        votes = count_votes(external)
        label = released_label(external)
        if scenario != "tie" and label != emotion:
            # A second category named by one evaluator tied the vote: drop the extras, which cannot tie.
            external = tuple(Judgement(j.evaluator, j.words[:1], j.comment) for j in external)
            votes, label = count_votes(external), released_label(external)
        side = speaker_side(utterance_id)
        start = position
        end = start + steps * GRID
        utterances.append(SynthUtterance(
            utterance_id=utterance_id,
            start_sample=start,
            end_sample=end,
            gender=gender,
            side=side,
            emotion=emotion,
            released_label=label,
            external=external,
            self_evaluations=_self_evaluation(rng, gender, emotion, votes),
            ratings=_ratings(rng, emotion, gender),
            text=_text(rng),
            voice=draw_voice(np.random.default_rng([seed, key, index, 1]),
                             emotion, voices[gender]),
            face=draw_face(np.random.default_rng([seed, key, index, 2]), emotion, gender),
        ))
        position = end + int(rng.integers(2, 9)) * GRID  # 0.125 .. 0.5 s gaps
    n_samples = position + int(rng.integers(8, 17)) * GRID
    return SynthDialog(
        name=name,
        session=session,
        improvised=improvised,
        n_samples=n_samples,
        noise_seed=int(rng.integers(2**62)),
        utterances=tuple(utterances),
        backchannels=_backchannels(rng, name, utterances),
    )


def _backchannels(rng: np.random.Generator, name: str, utterances: list[SynthUtterance]) -> tuple[Backchannel, ...]:
    """One or two `..._FXX0`-style lines, voiced by the listener during someone else's utterance."""
    chosen = sorted(rng.choice(len(utterances), size=int(rng.integers(1, 3)), replace=False))
    numbers: Counter[str] = Counter()
    lines = []
    for index in chosen:
        host = utterances[index]
        listener = "M" if host.gender == "F" else "F"
        middle = (host.start_sample + host.end_sample) // 2 // GRID * GRID
        lines.append(Backchannel(f"{name}_{listener}XX{numbers[listener]}", middle, middle + 4 * GRID,
                                 str(rng.choice(_BACKCHANNELS))))
        numbers[listener] += 1
    return tuple(lines)


def plan_corpus(params: SynthParams) -> tuple[SynthDialog, ...]:
    """Every dialog of the corpus, session by session."""
    rng = np.random.default_rng([params.seed, 0x5EED])
    dialogs = []
    keys: set[int] = set()
    for session in range(1, params.sessions + 1):
        # One female and one male actor per session, each with their own pitch.
        voices = {"F": float(rng.uniform(215, 245)), "M": float(rng.uniform(95, 120))}
        for name, improvised in dialog_names(session, params.dialogs_per_session):
            key = _dialog_key(name, keys)
            keys.add(key)
            dialogs.append(plan_dialog(name, session, improvised, params.utterances_per_dialog, params.seed, voices, key))
    return tuple(dialogs)
