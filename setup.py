"""The one thing pyproject.toml cannot say without an experimental table: the C extension.

wa_sessions/_listing.c is the scan's directory listing (readdir + fstatat, one tuple per entry).
It is optional: where no C compiler is found the install goes on without it, and
wa_sessions/scan.py lists with os.scandir instead (the same entries, a third slower).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("wa_sessions._listing", sources=["wa_sessions/_listing.c"], optional=True),
    ]
)
