"""`python -m cfbuild`: the same program as the `cfbuild` command."""

from cli.cfbuild import main

main()
