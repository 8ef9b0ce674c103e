"""wa-sessions: keep Baileys auth-state folders healthy without ever losing a session."""

__version__ = "0.1.0"
