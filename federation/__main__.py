"""`python -m federation` is the `federation` command."""

from federation.lifetime import die_with_parent

die_with_parent()  # first: a node a run started must not outlive it

from federation.cli import main  # noqa: E402 - after the parent check, which must come first

main()
