"""``python -m grokking_cli``: the ``dmft`` command."""

from grokking_cli.main import main

main()
