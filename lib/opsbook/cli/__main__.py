"""`python -m opsbook.cli`: the same as the `opsbook` command."""
from .main import main

main()
