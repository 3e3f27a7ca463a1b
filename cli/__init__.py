"""The command line: the top floor, which assembles the parts (cli.main has the root)."""
