"""``python -m services.inference.model_server``: see ``cli``."""

from services.inference.model_server.cli import main

main()
