"""The one thing pyproject.toml cannot say without an experimental table: the C extension.

wa_sessions/_listing.c is the scan's directory listing (readdir + fstatat, one tuple per entry).
It is optional: where no C compiler is found the install goes on without it, and
wa_sessions/listing.py lists with os.scandir instead (the same entries, a third slower);
`wa-sessions --version` says which listing runs.

The listing is always compiled anew, and a build of it left in the checkout (`build/`, or an
in-place build) is removed first: otherwise `pip install .` reuses a stale `build/lib*/
wa_sessions/_listing*.so` that looks up to date, and where no compiler exists ships it instead
of falling back to Python, without anyone noticing.
"""

import os

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class BuildFreshExtensions(build_ext):
    """build_ext that never reuses an earlier build: force a rebuild, and remove the extension's
    earlier output first, so a failed optional build leaves none behind."""

    def finalize_options(self) -> None:
        super().finalize_options()
        self.force = True

    def run(self) -> None:
        for extension in self.extensions:
            earlier = self.get_ext_fullpath(extension.name)
            if os.path.lexists(earlier):
                os.remove(earlier)
        super().run()


setup(
    cmdclass={"build_ext": BuildFreshExtensions},
    ext_modules=[
        Extension("wa_sessions._listing", sources=["wa_sessions/_listing.c"], optional=True),
    ],
)
