"""`python -m heron` is the `heron` command."""

from heron.cli import main

main()
