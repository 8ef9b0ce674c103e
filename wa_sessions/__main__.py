"""`python -m wa_sessions`."""

from wa_sessions.cli import main

main()
