"""Options shared by several verbs, defined once."""

from __future__ import annotations

import click

iemocap_option = click.option(
    "--iemocap",
    "iemocap",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="The IEMOCAP_full_release folder, or a folder that contains it.",
)


def label_options(command):
    """--label-policy, --merge-excited, --improvised-only, --seed."""
    command = click.option("--seed", type=int, default=0, show_default=True,
                           help="Seeds tie-breaking (per utterance id) and random splits.")(command)
    command = click.option("--improvised-only", is_flag=True,
                           help="Keep improvised dialogs only (the seed paper's protocol).")(command)
    command = click.option("--merge-excited", is_flag=True,
                           help="Map exc to hap before labelling.")(command)
    command = click.option("--label-policy", type=click.Choice(["paper", "released"]), default="paper",
                           show_default=True,
                           help="paper: majority of the external evaluators' votes; released: the consensus label.")(command)
    return command
