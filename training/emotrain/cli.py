"""`emotrain`: the training command line. Each verb lives in emotrain/commands/."""

from __future__ import annotations

import click

from emotrain import __version__
from emotrain.commands.evaluate import evaluate
from emotrain.commands.experiment import experiment
from emotrain.commands.fit import fit
from emotrain.commands.predict import predict


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="emotrain")
def main() -> None:
    """Train and evaluate the audio-visual emotion + gender model on emoprep shards.

    \b
    Typical run:
      emotrain fit --shards shards --split paper --out runs/mm-dynamic
      emotrain evaluate --run runs/mm-dynamic --split paper --part test
      emotrain experiment --shards shards --out runs/table1 --model small
      emotrain predict --run runs/mm-dynamic --shards my-shards --out predictions.csv
    """


for command in (fit, evaluate, experiment, predict):
    main.add_command(command)


if __name__ == "__main__":
    main()
