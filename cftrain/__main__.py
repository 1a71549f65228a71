"""`python -m cftrain`: the same program as the `cftrain` command."""

from cli.cftrain import main

main()
