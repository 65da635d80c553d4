"""`swift web-ui`: train, watch, chat, export and deploy from a browser.

The heart is a job service (`jobs.py`): every job is the same `swift` CLI command run as a detached
subprocess, with its arguments, status, log and metrics in a folder on disk, so the page can be
closed, and the server restarted, without stopping or stalling a job. The page's forms are built
from the commands' own argument dataclasses and the installed capabilities' options (`forms.py`),
so the UI cannot lag the CLI.
"""
