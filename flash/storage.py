"""Static files storage for production: WhiteNoise's hashed and compressed files."""

import logging

from whitenoise.storage import CompressedManifestStaticFilesStorage

log = logging.getLogger(__name__)


class CompressedManifestStorage(CompressedManifestStaticFilesStorage):
    """Hashed names from collectstatic's manifest, as WhiteNoise's storage does — except in a
    process where collectstatic has never run (a Celery worker, a benchmark, a one-off
    command), which renders plain /static/ names instead of failing every page; a web server
    there would have nothing to serve, which `make run` prevents by collecting first."""

    def stored_name(self, name):
        if not self.hashed_files:
            if not getattr(self, "_warned", False):
                self._warned = True
                log.warning("no static files manifest (run manage.py collectstatic)")
            return name
        return super().stored_name(name)
