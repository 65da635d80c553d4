"""Processes of a distributed run: starting them (`launcher.py`) and knowing which one we are (`ranks.py`)."""
