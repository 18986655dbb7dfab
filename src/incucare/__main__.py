"""``python -m incucare`` runs the CLI."""

from incucare.cli import main

main()
