"""`python -m cli ...`: the `shrinkwatch` command, for a process that starts another."""

from cli.main import main

main()
