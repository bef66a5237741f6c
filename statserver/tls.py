"""TLS for the senders (``wss://`` in ``StatsClient`` and ``statserver-load``): Twisted's
client TLS, which needs pyOpenSSL and service_identity (``pip install 'statserver[tls]'``).
Without them a ``wss://`` URL is refused at once with a line saying so, not at every dial."""


class TLSUnavailable(ValueError):
    """``wss://`` was asked for and Twisted's TLS support is not installed."""


def tls_options(host):
    """Twisted's client TLS options for ``host`` (its certificate checked for that name);
    raises :class:`TLSUnavailable` when TLS cannot be had."""
    try:
        from twisted.internet.ssl import optionsForClientTLS

        return optionsForClientTLS(host)
    except ImportError as e:
        raise TLSUnavailable(f"wss:// needs TLS support: pip install 'statserver[tls]' "
                             f"(Twisted's tls extra; {e})") from None


def client_tls(host, endpoint):
    """``endpoint`` wrapped in TLS to ``host``; raises :class:`TLSUnavailable`."""
    from twisted.internet import endpoints

    return endpoints.wrapClientTLS(tls_options(host), endpoint)
