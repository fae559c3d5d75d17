#!/usr/bin/env python3
"""Writes tests/vectors/uris.json: evidence URIs that `protocol.uri.check_uri` takes or refuses.

The lists are fixed here, for other implementations of the rule to test against; each refused
URI carries the reason. The test checks that this script's output is the file, byte for byte,
and that our checker agrees with every case.

Run: .venv/bin/python scripts/vectors/uris.py > tests/vectors/uris.json
"""

from __future__ import annotations

import json
import sys

from protocol.uri import SCHEMES, URI_RULE_FROM

HEX = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
CIDV0 = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"
CIDV1 = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
AR_TX = "bNbA3TEQVL60xlgCcqdz4ZPHFZ711cZ3hmkpGttDt_U"

VALID = [
    "https://example.org",
    "https://example.org/",
    "https://example.org/pr/17",
    "https://github.com/workwork/workwork/pull/17#issuecomment-1",
    "https://example.org:8443/a/b?x=1&y=%20z#top",
    "https://sub.example.co.uk./path;params/with:colons@and-ats",
    "https://xn--bcher-kva.example/b%C3%BCcher",
    "https://192.0.2.7/report.pdf",
    "https://[2001:db8::1]:443/x",
    "https://example.org/~user/a-b_c.d!$&'()*+,;=",
    f"ipfs://{CIDV0}",
    f"ipfs://{CIDV1}/report/index.html",
    f"ar://{AR_TX}",
    f"ar://{AR_TX}/index.html",
    f"workwork:sha256:{HEX}",
]

INVALID = [
    ("", "empty: leave the field out instead (a hash alone is evidence too)"),
    ("u", "no scheme"),
    ("not a uri", "no scheme"),
    ("example.org/pr/17", "no scheme"),
    ("http://example.org/pr/17", "http is not a scheme others can open safely"),
    ("file:///home/bob/work.md", "a path on one machine's disk"),
    ("data:text/plain,hi", "not an evidence scheme"),
    ("javascript:alert(1)", "not an evidence scheme"),
    ("HTTPS://example.org", "the scheme must be lowercase"),
    ("https://", "no host"),
    ("https:///path", "no host"),
    ("https://example.org/a b", "a space"),
    ("https://example.org/\tx", "a control character"),
    ("https://example.org/ü", "not ASCII"),
    ("https://bücher.example", "not ASCII: punycode the host"),
    ("https://user:pass@example.org", "a user part"),
    ("https://good.example@evil.example/", "a user part"),
    ("https://-bad.example", "a label starts with a hyphen"),
    ("https://example.org:0", "port 0"),
    ("https://example.org:65536", "port out of range"),
    ("https://example.org:443x", "port not a number"),
    ("https://example.org/%zz", "a % not before two hex digits"),
    ("https://example.org/<script>", "characters RFC 3986 does not allow"),
    ("https://[::g]/", "not an IPv6 address"),
    ("https://example.org\\@evil", "a backslash"),
    ("ipfs://", "no CID"),
    ("ipfs://QmShort", "not a CID"),
    (f"ipfs://{CIDV1.upper()}", "a CIDv1 in uppercase"),
    (f"ipfs:/{CIDV0}", "one slash"),
    ("ar://short", "not a 43-character transaction id"),
    (f"ar://{AR_TX}=", "padding"),
    (f"workwork:sha256:{HEX.upper()}", "uppercase hex"),
    (f"workwork:sha256:{HEX[:-1]}", "63 hex digits"),
    (f"workwork:sha256:{HEX}0", "65 hex digits"),
    (f"workwork:sha1:{HEX[:40]}", "only sha256"),
    (f"workwork:sha256:{HEX}/x", "a path"),
    (f"workwork://sha256:{HEX}", "slashes"),
]


def main() -> None:
    document = {
        "generator": "scripts/vectors/uris.py",
        "schemes": list(SCHEMES),
        "rule_from": URI_RULE_FROM,
        "valid": VALID,
        "invalid": [{"uri": uri, "why": why} for uri, why in INVALID],
    }
    json.dump(document, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
