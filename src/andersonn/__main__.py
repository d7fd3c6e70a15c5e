"""``python -m andersonn`` (also what ``torchrun -m andersonn train`` runs)."""

from .cli import main

main()
