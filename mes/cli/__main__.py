"""``python -m mes.cli`` runs the ``mes`` command."""

from mes.cli import main

main()
