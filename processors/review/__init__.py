"""`sciqag review`: a local web app for the people who build datasets from the stream, to look at pairs and give
verdicts (accept, reject with a reason, or an edited question and answer) that readers honour over the judge's.

app.py holds the routes, security.py what keeps it safe by default (loopback, token, CSRF, CSP), text.py the paper
text cut into highlighted pieces; templates/ and static/ the pages.
"""

from .app import create_app

__all__ = ["create_app"]
