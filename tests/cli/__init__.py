"""Tests of the command line: each subcommand's output and its one-line errors (exit 2)."""
