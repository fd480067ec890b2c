"""benchopt 1.10's result cache must see ``benchmark_utils/`` (``docs/studies.md``).

benchopt keys its cache on the objective, dataset and solver files only, so an
edit in ``benchmark_utils/`` would silently reuse stale results. The objective
puts :data:`UTILS_DIGEST` in its pickled state (:class:`UtilsDigest`), which
is part of the key, and a worker whose checkout differs fails its cell.
"""

import hashlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def _is_source(path, root):
    """A ``*.py`` file under ``root`` with no hidden or editor-lock part."""
    parts = path.relative_to(root).parts
    return not any(p.startswith((".", "#")) for p in parts) and path.is_file()


def utils_digest(root=ROOT):
    """MD5 of the names and contents of the source files under ``root``."""
    root = Path(root)
    md5 = hashlib.md5()
    for path in sorted(root.rglob("*.py")):
        if not _is_source(path, root):
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        md5.update(str(path.relative_to(root)).encode())
        md5.update(data)
    return md5.hexdigest()


UTILS_DIGEST = utils_digest()


class UtilsDigest:
    """Mixin of the objective: the digest travels in its pickled state.

    A mismatch cannot raise while unpickling (that kills a whole ``-j N``
    pool); it is raised by :meth:`skip`, inside the cell.
    """

    def _get_state(self):
        return {"benchmark_utils": UTILS_DIGEST}

    def __setstate__(self, state):
        self._digest_error = None
        if state and state.get("benchmark_utils") != UTILS_DIGEST:
            self._digest_error = (
                "benchmark_utils/ differs between the process that sent this "
                "objective and this one: run every worker on the same checkout"
            )

    def skip(self, **data):
        if getattr(self, "_digest_error", None):
            raise RuntimeError(self._digest_error)
        return False, None
