"""`emoprep labels`: a corpus's metadata -> labels.parquet, one row per utterance (no media read)."""

from __future__ import annotations

import click

from emoprep.commands.options import corpus_options, label_options, read_corpus_clips
from emoprep.labels import count_table, labels_table, write_labels


@click.command()
@corpus_options
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="The Parquet file to write (replaced atomically).")
@label_options
def labels(corpus: str | None, root: str | None, iemocap: str | None, out: str, label_policy: str | None,
           classes: str, seed: int, settings: tuple[str, ...]) -> None:
    """Label every utterance of a corpus from its metadata alone (no media is read).

    Writes one row per utterance (kept or not): speaker, gender, the corpus's own
    label and the class it maps to, where its media are; the corpus's class list,
    label policy and splits ride along in the file's metadata. Prints a class x
    gender count table, and lists bad metadata on stderr as `path:line: utterance:
    reason`; they are left out, the rest goes on.

    \b
    Examples:
      emoprep labels --iemocap /data/IEMOCAP_full_release --out data/labels.parquet
      emoprep labels --iemocap /data --out labels.parquet --set improvised_only=1
      emoprep labels --iemocap /data --out labels.parquet --label-policy released --set merge_excited=1
      emoprep labels --corpus crema-d --root /data/CREMA-D --out crema.parquet --label-policy perceived
      emoprep labels --corpus ravdess --root /data/RAVDESS --out ravdess.parquet --classes all
    """
    clips = read_corpus_clips(corpus, root, iemocap, label_policy, classes, seed, settings)
    for problem in clips.problems:
        click.echo(str(problem), err=True)
    if not clips.clips:
        raise click.ClickException(f"{clips.root}: no utterance could be read from the {clips.corpus} metadata; "
                                   "check the layout against docs/corpora/")
    path = write_labels(labels_table(clips), out)
    click.echo(count_table(clips.clips, clips.classes))
    policy = ", ".join(f"{key} {value}" for key, value in sorted(clips.label_policy.items()))
    click.echo(f"wrote {path}: {len(clips.clips)} utterances of {clips.corpus}, {len(clips.kept)} kept ({policy})")
    click.echo(f"{len(clips.problems)} problem(s)" + (" listed above on stderr" if clips.problems else ""))
