"""`emoprep synth`: write a synthetic corpus in IEMOCAP's on-disk layout."""

from __future__ import annotations

import click

from emoprep.synth import CORPUS_FOLDER, SynthError, SynthParams, generate_corpus


@click.command()
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Folder to write; the corpus goes to OUT/IEMOCAP_full_release.")
@click.option("--sessions", type=click.IntRange(1, 5), default=SynthParams.sessions, show_default=True)
@click.option("--dialogs-per-session", type=click.IntRange(1), default=SynthParams.dialogs_per_session,
              show_default=True, help="Alternately F and M session letters; pairs share a name as in IEMOCAP.")
@click.option("--utterances-per-dialog", type=click.IntRange(4), default=SynthParams.utterances_per_dialog,
              show_default=True)
@click.option("--seed", type=int, default=SynthParams.seed, show_default=True,
              help="Same seed, same files (byte for byte).")
@click.option("--workers", type=click.IntRange(1), default=2, show_default=True,
              help="Dialogs encoded at once (one ffmpeg thread each); the output does not depend on it.")
def synth(out: str, sessions: int, dialogs_per_session: int, utterances_per_dialog: int, seed: int,
          workers: int) -> None:
    """Write a SYNTHETIC corpus in IEMOCAP's exact layout and formats.

    Dialog AVIs (720x480, 29.97 fps, DivX), dialog and sentence WAVs (16 kHz),
    transcriptions and EmoEvaluation files, for tests and the demo. Voices and
    faces carry emotion and gender by construction: accuracy on this corpus
    says nothing about real IEMOCAP. Re-running with the same options resumes
    an interrupted run.

    \b
    Examples:
      emoprep synth --out data/synth                       # the demo corpus, ~260 utterances
      emoprep synth --out /tmp/tiny --sessions 1 --dialogs-per-session 2 --utterances-per-dialog 6
      emoprep labels --iemocap data/synth --out data/labels.parquet
    """
    total = sessions * dialogs_per_session
    try:
        with click.progressbar(length=total, label="dialogs", item_show_func=lambda name: name) as bar:
            summary = generate_corpus(out, sessions, dialogs_per_session, utterances_per_dialog, seed, workers,
                                      progress=lambda dialog: bar.update(1, dialog.name))
    except (SynthError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    released = ", ".join(f"{label} {count}" for label, count in summary.released)
    click.echo(
        f"wrote {summary.out / CORPUS_FOLDER}\n"
        f"  dialogs      {summary.dialogs} ({summary.dialogs - summary.written} already complete)\n"
        f"  utterances   {summary.utterances} ({summary.kept_majority} with an ang/hap/neu/sad majority)\n"
        f"  released     {released}\n"
        f"  audio        {summary.dialog_seconds:.1f} s of dialog, {summary.utterance_seconds:.1f} s in utterances\n"
        f"  wall time    {summary.wall_seconds:.1f} s"
    )
