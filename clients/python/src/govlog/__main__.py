"""python -m govlog: see govlog.cli."""

from .cli import main

main()
