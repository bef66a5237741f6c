"""Which autoscaler buckets this process owns (Knative's HA mode)."""

from twisted.logger import Logger

BUCKET_HOST_PREFIX = "autoscaler-bucket"


def _hostname(host):
    """A Host header without its port and brackets, lower-cased (as Go's
    ``net.SplitHostPort``: ``[::1]:8080`` → ``::1``, ``[name]:8080`` → ``name``)."""
    host = host.strip().lower()
    if host.startswith("["):  # an IPv6 literal (or any name) in brackets
        end = host.find("]")
        return host[1:end] if end > 0 else host
    return host.rsplit(":", 1)[0] if ":" in host else host


def bucket_of(host):
    """The bucket a Host header names (``autoscaler-bucket-00-of-02.knative-serving``
    → ``autoscaler-bucket-00-of-02``), or None when it is not a bucket host."""
    name = _hostname(host)
    if not name.startswith(BUCKET_HOST_PREFIX):
        return None
    return name.split(".", 1)[0]


class BucketOwners:
    """The bucket names this process owns: ``names`` plus those listed in the file at
    ``path`` (one a line; blank lines and ``#`` comments ignored), re-read by ``reload()``.
    """

    _log = Logger()

    def __init__(self, names=(), path=None):
        self._names = frozenset(n.strip().lower() for n in names if n.strip())
        self.path = path
        self._from_file = frozenset()
        if path is not None:
            self._from_file = self._read()

    @property
    def names(self):
        """Every owned bucket name."""
        return self._names | self._from_file

    def _read(self):
        with open(self.path, encoding="utf-8") as f:
            lines = (line.split("#", 1)[0].strip().lower() for line in f)
            return frozenset(line for line in lines if line)

    def reload(self):
        """Re-read ``path``; on error keep the old set and log why. Returns True when the
        file was read."""
        if self.path is None:
            return True
        try:
            self._from_file = self._read()
        except (OSError, UnicodeDecodeError) as e:
            self._log.error(
                "Cannot re-read bucket owners from {path}: {error}; keeping {names}",
                path=self.path,
                error=e,
                names=sorted(self.names),
            )
            return False
        self._log.info("Bucket owners now {names}", names=sorted(self.names))
        return True

    def owns_host(self, host):
        """False only for a bucket host (``autoscaler-bucket...``) of a bucket not owned
        here; other names and IP addresses pass, as in Knative."""
        bucket = bucket_of(host)
        return bucket is None or bucket in self.names
