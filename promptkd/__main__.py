"""``python -m promptkd`` runs the command line."""

from promptkd.cli import main

main()
