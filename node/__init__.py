"""The running node: libp2p host, gossip, sync, chain client, local API and CLI."""

from protocol import __version__

__all__ = ["__version__"]
