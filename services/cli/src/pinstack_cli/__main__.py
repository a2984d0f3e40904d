"""``python -m pinstack_cli`` is the ``pinstack`` command."""

from pinstack_cli.main import app

app()
