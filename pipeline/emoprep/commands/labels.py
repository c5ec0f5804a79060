"""`emoprep labels`: IEMOCAP annotations -> labels.parquet, one row per utterance."""

from __future__ import annotations

import click

from emoprep.commands.options import iemocap_option, label_options
from emoprep.corpus.iemocap import CorpusError, read_corpus
from emoprep.labels import LabelPolicy, assign_labels, count_table, labels_table, write_labels


@click.command()
@iemocap_option
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="The Parquet file to write (replaced atomically).")
@label_options
def labels(iemocap: str, out: str, label_policy: str, merge_excited: bool, improvised_only: bool,
           seed: int) -> None:
    """Label every utterance from the annotation files alone (no media is read).

    Writes one row per utterance (kept or not) with its votes and emotion,
    prints a class x gender count table, and lists bad annotation blocks on
    stderr as `path:line: utterance: reason`; they are left out, the rest goes on.

    \b
    Examples:
      emoprep labels --iemocap /data/IEMOCAP_full_release --out data/labels.parquet
      emoprep labels --iemocap /data --out labels.parquet --improvised-only
      emoprep labels --iemocap /data --out labels.parquet --label-policy released --merge-excited
    """
    try:
        corpus = read_corpus(iemocap)
    except CorpusError as error:
        raise click.BadParameter(str(error), param_hint="--iemocap") from None
    for problem in corpus.problems:
        click.echo(str(problem), err=True)
    if not corpus.utterances:
        raise click.ClickException(
            f"{corpus.root}: no utterance could be read from Session*/dialog/EmoEvaluation/*.txt; "
            "check that the annotation files are there"
        )

    policy = LabelPolicy(label_policy, merge_excited, improvised_only, seed)
    labelled = assign_labels(corpus, policy)
    path = write_labels(labels_table(labelled, policy), out)
    kept = sum(item.emotion is not None for item in labelled)
    click.echo(count_table(labelled))
    click.echo(f"wrote {path}: {len(labelled)} utterances, {kept} kept "
               f"(policy {policy.name}, merge excited: {'yes' if merge_excited else 'no'}, "
               f"improvised only: {'yes' if improvised_only else 'no'}, seed {seed})")
    click.echo(f"{len(corpus.problems)} problem(s)" + (" listed above on stderr" if corpus.problems else ""))
