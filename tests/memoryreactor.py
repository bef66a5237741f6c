"""``MemoryReactor``: Twisted's ``MemoryReactorClock`` behaving as the newest Twisted's
does, on every Twisted we support.

Twisted 24.7's (our oldest) starts with ``hasStopped`` already true, queues
``callWhenRunning`` calls even while ``running`` is set, and has no pluggable name
resolver, so that a ``HostnameEndpoint`` on it never dials."""

from twisted.internet._resolver import HostResolution
from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import IHostnameResolver, IReactorPluggableNameResolver
from twisted.internet.testing import MemoryReactorClock
from zope.interface import implementer


@implementer(IHostnameResolver)
class FixedResolver:
    """Resolves every name, at once, to the IPv4 ``hosts`` given (none: every dial fails
    in name resolution)."""

    def __init__(self, hosts=("127.0.0.1",)):
        self.hosts = hosts

    def resolveHostName(self, receiver, hostName, portNumber=0, addressTypes=None,
                        transportSemantics="TCP"):
        resolution = HostResolution(hostName)
        receiver.resolutionBegan(resolution)
        for host in self.hosts:
            receiver.addressResolved(IPv4Address("TCP", host, portNumber))
        receiver.resolutionComplete()
        return resolution


@implementer(IReactorPluggableNameResolver)
class MemoryReactor(MemoryReactorClock):
    """A ``MemoryReactorClock`` that has not stopped until ``stop``, runs
    ``callWhenRunning`` calls at once once it runs (or ``running`` is set), and resolves
    names with ``nameResolver`` (``FixedResolver()``, 127.0.0.1, until one is installed)."""

    def __init__(self):
        super().__init__()
        self.hasRun = self.hasStopped = self.hasCrashed = False
        self.nameResolver = FixedResolver()

    def installNameResolver(self, resolver):
        previous, self.nameResolver = self.nameResolver, resolver
        return previous

    def callWhenRunning(self, f, *args, **kwargs):
        if self.running or self.hasRun:
            f(*args, **kwargs)
        else:
            self.whenRunningHooks.append((f, args, kwargs))
