"""`emoprep`: the preprocessing command line. Each verb lives in emoprep/commands/."""

from __future__ import annotations

import click

from emoprep import __version__
from emoprep.commands.corpora import corpora
from emoprep.commands.extract import extract
from emoprep.commands.inspect import inspect
from emoprep.commands.labels import labels
from emoprep.commands.shard import shard
from emoprep.commands.synth import synth
from emoprep.commands.verify import verify


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="emoprep")
def main() -> None:
    """Preprocess an audio-visual emotion corpus into WebDataset shards for emotrain.

    Any corpus with a recipe: --corpus iemocap | crema-d | ravdess | emodb |
    audio-folder | clips --root PATH (--iemocap PATH for short); `emoprep
    corpora` lists each recipe's options; docs/data-preparation.md.

    \b
    Typical run:
      emoprep synth   --out data/synth                 # or use the real corpus
      emoprep labels  --iemocap data/synth --out data/labels.parquet
      emoprep extract --iemocap data/synth --out work  # or --corpus crema-d --root /data/CREMA-D
      emoprep shard   --work work --out shards
      emoprep verify  shards
      emoprep inspect shards --out sheet.png
    """


for command in (corpora, synth, labels, extract, shard, verify, inspect):
    main.add_command(command)


if __name__ == "__main__":  # python -m emoprep.cli, as python -m emotrain.cli
    main()
