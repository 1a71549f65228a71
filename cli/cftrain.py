"""`cftrain`: train models on pair stores (filled in by the trainer)."""

import click

from cli.common import Group, debug_option


@click.group(name="cftrain", cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@debug_option
def main(debug):
    """Train on cfpairs stores with gradient supervision."""


if __name__ == "__main__":
    main()
