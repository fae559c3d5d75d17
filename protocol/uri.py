"""Evidence URIs: where a contribution's work can be opened by anyone who reads the record.

A contribution's `evidence_uri` is empty (the hash alone) or one of:

- `https://host[:port][/path][?query][#fragment]`: a web page. The host is a DNS name in ASCII
  (an internationalized name in its punycode form), an IPv4 address or a bracketed IPv6 one;
  no user or password part (`https://good.example@evil.example` is refused).
- `ipfs://<cid>[/path]`: content on IPFS, by a CIDv0 (`Qm` + 44 base58 digits) or a CIDv1 in
  lowercase base32 (`b` + at least 50 of a-z, 2-7).
- `ar://<transaction id>[/path]`: content on Arweave, by its 43-character base64url id.
- `workwork:sha256:<64 lowercase hex digits>`: a blob a node holds in its evidence store and
  serves to peers (`/workwork/evidence/1`), named by its sha256.

Strict by design: the scheme in lowercase, ASCII only, no spaces or control characters, every
other character one that RFC 3986 allows where it stands (`%` only before two hex digits).
Other schemes (`http`, `file`, `data`, `javascript`, ...) are refused: the point of evidence
is that a reviewer on another machine can open it, safely. A `workwork:` URI and a non-empty
`evidence_hash` must name the same sha256.

The rule binds contributions created at or after `URI_RULE_FROM` (records.Contribution.check);
older ones keep whatever text they carried, so that stores and the network's history stay
valid. The node refuses to make a contribution that breaks the rule whatever its date.
"""

from __future__ import annotations

import ipaddress
import re

# 2026-12-06T00:00:00Z: contributions dated from then on carry a valid URI or none.
URI_RULE_FROM = 1_796_515_200

SCHEMES = ("https", "ipfs", "ar", "workwork")

_UNRESERVED = r"A-Za-z0-9\-._~"
_SUB_DELIMS = r"!$&'()*+,;="
_PCT = r"%[0-9A-Fa-f]{2}"
_PCHAR = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:@]|{_PCT})"
_PATH = rf"(?:/{_PCHAR}*)*"
_QUERY = rf"(?:\?(?:{_PCHAR}|[/?])*)?"
_FRAGMENT = rf"(?:#(?:{_PCHAR}|[/?])*)?"
_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_DNS = rf"{_LABEL}(?:\.{_LABEL})*\.?"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_IPV6 = r"\[[0-9A-Fa-f:.]{2,45}\]"
_PORT = r"(?::(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}))?"

HTTPS = re.compile(rf"https://(?:{_IPV4}|{_DNS}|{_IPV6}){_PORT}{_PATH}{_QUERY}{_FRAGMENT}")
IPFS = re.compile(rf"ipfs://(?:Qm[1-9A-HJ-NP-Za-km-z]{{44}}|b[a-z2-7]{{50,200}}){_PATH}")
AR = re.compile(rf"ar://[A-Za-z0-9_-]{{43}}{_PATH}")
WORKWORK = re.compile(r"workwork:sha256:([0-9a-f]{64})")
_HOST_BOUND = 253


class UriError(ValueError):
    """Raised when an evidence URI breaks the rules above; the message says which."""


def check_uri(uri: str) -> None:
    """Checks an evidence URI (not empty).

    Raises:
        UriError: the URI is not one of the forms this module describes.
    """
    scheme, colon, _ = uri.partition(":")
    if not colon or scheme.lower() not in SCHEMES:
        what = f"scheme {scheme}:" if colon and len(scheme) <= 16 else "a text without a scheme"
        raise UriError(
            f"{what} is not evidence others can open: use https://, ipfs://, ar:// or "
            "workwork:sha256:<hex> (`workwork contribute --evidence FILE` stores a file)"
        )
    if scheme != scheme.lower():
        raise UriError(f"the scheme must be lowercase ({scheme.lower()}:)")
    pattern = {"https": HTTPS, "ipfs": IPFS, "ar": AR, "workwork": WORKWORK}[scheme]
    if not pattern.fullmatch(uri):
        raise UriError(_why(scheme, uri))
    if scheme == "https":
        authority = re.split(r"[/?#]", uri[len("https://") :], maxsplit=1)[0]
        if authority.startswith("["):
            try:
                ipaddress.IPv6Address(authority[1:].partition("]")[0])
            except ValueError:
                raise UriError("the host in brackets is not an IPv6 address") from None
        elif len(authority.partition(":")[0]) > _HOST_BOUND:
            raise UriError(f"the host has more than {_HOST_BOUND} characters")


def _why(scheme: str, uri: str) -> str:
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in uri):
        return "spaces and control characters are not allowed: percent-encode them (%20)"
    if not uri.isascii():
        return "only ASCII is allowed: percent-encode other characters, punycode a host name"
    if scheme == "https":
        authority = uri[len("https://") :].split("/", 1)[0]
        if "@" in authority:
            return "an https URI with a user part (user@host) is refused"
        return "not an https URI: https://host[:port][/path][?query][#fragment]"
    if scheme == "ipfs":
        return "not an ipfs URI: ipfs://<CIDv0 Qm... or CIDv1 base32 b...>[/path]"
    if scheme == "ar":
        return "not an ar URI: ar://<43-character transaction id>[/path]"
    return "not a workwork URI: workwork:sha256:<64 lowercase hex digits>"


def evidence_uri(digest: bytes) -> str:
    """Returns the `workwork:` URI of a sha256 digest."""
    if len(digest) != 32:
        raise ValueError("a sha256 digest has 32 bytes")
    return f"workwork:sha256:{digest.hex()}"


def workwork_digest(uri: str) -> bytes | None:
    """Returns the sha256 that a `workwork:sha256:` URI names; None for any other URI."""
    found = WORKWORK.fullmatch(uri)
    return None if found is None else bytes.fromhex(found.group(1))
