"""`python -m intriguing_fast.attack`: see intriguing_fast.attack.cli."""
from .cli import main

main()
