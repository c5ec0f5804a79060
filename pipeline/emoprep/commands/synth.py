"""`emoprep synth`: write a synthetic corpus in IEMOCAP's, CREMA-D's, RAVDESS's or EmoDB's on-disk format."""

from __future__ import annotations

import functools

import click
from click.core import ParameterSource

from emoprep.synth import CORPUS_FOLDER, SynthError, SynthParams, generate_corpus
from emoprep.synth.crema_d import CremaParams, generate_crema_d, plan_crema_d
from emoprep.synth.emodb import RATES, EmodbParams, generate_emodb, plan_emodb
from emoprep.synth.output import TwinSummary
from emoprep.synth.ravdess import RavdessParams, generate_ravdess, plan_ravdess

# Which options each corpus takes; giving another corpus's option is an error, not silently ignored.
OPTIONS = {
    "iemocap": ("sessions", "dialogs_per_session", "utterances_per_dialog"),
    "crema-d": ("actors", "sentences"),
    "ravdess": ("actors", "statements", "repetitions", "intensities", "song"),
    "emodb": ("speakers", "texts", "versions", "sample_rate"),
}


@click.command()
@click.option("--corpus", type=click.Choice(tuple(OPTIONS)), default="iemocap", show_default=True,
              help="Which corpus's format to write.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Folder to write; the corpus goes to OUT/IEMOCAP_full_release, OUT/CREMA-D, OUT/RAVDESS "
                   "or OUT/EmoDB.")
@click.option("--sessions", type=click.IntRange(1, 5), default=SynthParams.sessions, show_default=True,
              help="iemocap.")
@click.option("--dialogs-per-session", type=click.IntRange(1), default=SynthParams.dialogs_per_session,
              show_default=True, help="iemocap: alternately F and M session letters; pairs share a name.")
@click.option("--utterances-per-dialog", type=click.IntRange(4), default=SynthParams.utterances_per_dialog,
              show_default=True, help="iemocap.")
@click.option("--actors", type=click.IntRange(1, 91), default=None,
              help=f"crema-d (default {CremaParams.actors}, up to 91), ravdess (default {RavdessParams.actors}, "
                   "up to 24): alternately male and female.")
@click.option("--sentences", type=click.IntRange(1, 12), default=CremaParams.sentences, show_default=True,
              help="crema-d: sentences per actor (DFA: 6 clips, IEO: 16, the others 6 each).")
@click.option("--statements", type=click.IntRange(1, 2), default=RavdessParams.statements, show_default=True,
              help="ravdess.")
@click.option("--repetitions", type=click.IntRange(1, 2), default=RavdessParams.repetitions, show_default=True,
              help="ravdess.")
@click.option("--intensities", type=click.IntRange(1, 2), default=RavdessParams.intensities, show_default=True,
              help="ravdess: 1 = normal only.")
@click.option("--song/--no-song", default=RavdessParams.song, show_default=True, help="ravdess: the sung trials too.")
@click.option("--speakers", type=click.IntRange(1, 10), default=EmodbParams.speakers, show_default=True,
              help="emodb: the first N of its speaker table (03 M, 08 F, 09 F, 10 M, ...).")
@click.option("--texts", type=click.IntRange(1, 10), default=EmodbParams.texts, show_default=True,
              help="emodb: texts per speaker, each in all seven emotions.")
@click.option("--versions", type=click.IntRange(1, 3), default=EmodbParams.versions, show_default=True,
              help="emodb: takes per text and emotion (a, b, c).")
@click.option("--sample-rate", type=click.Choice([str(rate) for rate in RATES]), default=str(EmodbParams.sample_rate),
              show_default=True, help="emodb: the wavs' rate (16000 as released; 22050 as resampled copies circulate).")
@click.option("--seed", type=int, default=SynthParams.seed, show_default=True,
              help="Same seed, same files (byte for byte).")
@click.option("--workers", type=click.IntRange(1), default=2, show_default=True,
              help="Dialogs or clips encoded at once (one ffmpeg thread each); the output does not depend on it.")
@click.pass_context
def synth(ctx: click.Context, corpus: str, out: str, sessions: int, dialogs_per_session: int,
          utterances_per_dialog: int, actors: int | None, sentences: int, statements: int, repetitions: int,
          intensities: int, song: bool, speakers: int, texts: int, versions: int, sample_rate: str, seed: int,
          workers: int) -> None:
    """Write a SYNTHETIC corpus in IEMOCAP's, CREMA-D's, RAVDESS's or EmoDB's exact layout and formats.

    IEMOCAP: dialog AVIs (720x480, 29.97 fps, DivX), dialog and sentence WAVs
    (16 kHz), transcriptions and EmoEvaluation files. CREMA-D: AudioWAV/ (16 kHz)
    and VideoFlash/ (480x360 FLV1 + MP3) with its CSVs. RAVDESS: Actor_NN/
    folders of 1280x720 H.264 + AAC 48 kHz mp4s. EmoDB: wav/ of 16-bit mono
    wavs (audio only). Voices and faces carry emotion
    and gender by construction: accuracy on these corpora says nothing about the
    real ones. Re-running with the same options resumes an interrupted run.

    \b
    Examples:
      emoprep synth --out data/synth                       # IEMOCAP's format, ~260 utterances
      emoprep synth --out /tmp/tiny --sessions 1 --dialogs-per-session 2 --utterances-per-dialog 6
      emoprep synth --corpus crema-d --out data/crema-d    # 6 actors x 22 clips
      emoprep synth --corpus ravdess --out data/ravdess --actors 6 --song
      emoprep synth --corpus emodb --out data/emodb --texts 2   # 10 speakers x 7 emotions x 2 texts
      emoprep labels --iemocap data/synth --out data/labels.parquet
    """
    for name in ctx.params:
        owners = [c for c, names in OPTIONS.items() if name in names]
        given = ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None)
        if owners and corpus not in owners and given:
            raise click.UsageError(f"--{name.replace('_', '-')} is for --corpus {' / '.join(owners)}, not {corpus}")
    try:
        if corpus == "iemocap":
            _iemocap(out, sessions, dialogs_per_session, utterances_per_dialog, seed, workers)
            return
        if corpus == "crema-d":
            crema_d = CremaParams(actors or CremaParams.actors, sentences, seed)
            total = len(plan_crema_d(crema_d))
            run = functools.partial(generate_crema_d, out, crema_d, workers)
        elif corpus == "ravdess":
            ravdess = RavdessParams(actors or RavdessParams.actors, statements, repetitions, intensities, song, seed)
            total = len(plan_ravdess(ravdess))
            run = functools.partial(generate_ravdess, out, ravdess, workers)
        else:
            emodb = EmodbParams(speakers, texts, versions, int(sample_rate), seed)
            total = len(plan_emodb(emodb))
            run = functools.partial(generate_emodb, out, emodb, workers)
        with click.progressbar(length=total, label="clips", item_show_func=lambda name: name) as bar:
            summary: TwinSummary = run(lambda clip: bar.update(1, clip.name))
    except (SynthError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    labels = ", ".join(f"{label} {count}" for label, count in summary.labels)
    click.echo(
        f"wrote {summary.root}\n"
        f"  clips        {summary.clips} ({summary.clips - summary.written} already complete)\n"
        f"  intended     {labels}\n"
        f"  audio        {summary.seconds:.1f} s\n"
        f"  wall time    {summary.wall_seconds:.1f} s"
    )


def _iemocap(out: str, sessions: int, dialogs_per_session: int, utterances_per_dialog: int, seed: int,
             workers: int) -> None:
    total = sessions * dialogs_per_session
    with click.progressbar(length=total, label="dialogs", item_show_func=lambda name: name) as bar:
        summary = generate_corpus(out, sessions, dialogs_per_session, utterances_per_dialog, seed, workers,
                                  progress=lambda dialog: bar.update(1, dialog.name))
    released = ", ".join(f"{label} {count}" for label, count in summary.released)
    click.echo(
        f"wrote {summary.out / CORPUS_FOLDER}\n"
        f"  dialogs      {summary.dialogs} ({summary.dialogs - summary.written} already complete)\n"
        f"  utterances   {summary.utterances} ({summary.kept_majority} with an ang/hap/neu/sad majority)\n"
        f"  released     {released}\n"
        f"  audio        {summary.dialog_seconds:.1f} s of dialog, {summary.utterance_seconds:.1f} s in utterances\n"
        f"  wall time    {summary.wall_seconds:.1f} s"
    )
