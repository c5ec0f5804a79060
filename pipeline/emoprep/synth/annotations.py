"""The text files of a synthetic dialog, in IEMOCAP's formats. Pure: strings in, strings out.

EmoEvaluation/<dialog>.txt: a `%` header line, then one block per utterance,
blocks separated by blank lines, fields separated by TABs:

    [6.2500 - 8.1875]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5000, 2.5000, 2.5000]
    C-E2:<TAB>Neutral;<TAB>()
    C-F1:<TAB>Neutral; Anger;<TAB>(curious)
    A-E3:<TAB>val 3; act 2; dom  2;<TAB>()

transcriptions/<dialog>.txt: `Ses01F_impro01_F000 [006.2500-008.1875]: text`.
"""

from __future__ import annotations

import numpy as np

from emoprep.synth.plan import SAMPLE_RATE, Backchannel, Judgement, Rating, SynthDialog, SynthUtterance

EVALUATION_HEADER = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]"

CORPUS_README = """\
SYNTHETIC corpus written by `emoprep synth` (emoav). It is NOT IEMOCAP.

It copies the on-disk layout and file formats of the IEMOCAP full release
(dialog AVI and WAV, sentence WAVs, transcriptions, EmoEvaluation files) so
the emoav pipeline can be tested and demonstrated without the licensed corpus.
Voices are harmonic tones and faces are one stock photograph whose tint and
motion encode the emotion: accuracy measured on this corpus says nothing about
accuracy on real speech or faces.

Generator parameters: {parameters}
"""


def _judgement_line(judgement: Judgement) -> str:
    return f"C-{judgement.evaluator}:\t{'; '.join(judgement.words)};\t({judgement.comment})"


def _rating_line(rating: Rating) -> str:
    # Two spaces before the dominance value, as in the released files.
    return f"A-{rating.evaluator}:\tval {rating.valence}; act {rating.activation}; dom  {rating.dominance};\t()"


def _block(utterance: SynthUtterance) -> str:
    external = [r for r in utterance.ratings if r.evaluator.startswith("E")]
    means = np.mean([[r.valence, r.activation, r.dominance] for r in external], axis=0)
    header = (
        f"[{utterance.start:.4f} - {utterance.end:.4f}]\t{utterance.utterance_id}\t{utterance.released_label}\t"
        f"[{means[0]:.4f}, {means[1]:.4f}, {means[2]:.4f}]"
    )
    lines = [header]
    lines += [_judgement_line(j) for j in utterance.external + utterance.self_evaluations]
    lines += [_rating_line(r) for r in utterance.ratings]
    return "\n".join(lines)


def evaluation_text(dialog: SynthDialog) -> str:
    """The dialog's EmoEvaluation file."""
    return EVALUATION_HEADER + "\n\n" + "".join(_block(u) + "\n\n" for u in dialog.utterances)


def _seconds(samples: int) -> str:
    return f"{samples / SAMPLE_RATE:08.4f}"


def transcription_text(dialog: SynthDialog) -> str:
    """The dialog's transcription: labelled utterances and unlabelled backchannels, by start time."""
    lines: list[SynthUtterance | Backchannel] = sorted(
        (*dialog.utterances, *dialog.backchannels), key=lambda line: (line.start_sample, line.utterance_id)
    )
    return "".join(
        f"{line.utterance_id} [{_seconds(line.start_sample)}-{_seconds(line.end_sample)}]: {line.text}\n"
        for line in lines
    )
