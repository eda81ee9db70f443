#!/usr/bin/env python3
"""Verify a BlameTrail webhook delivery (Standard Webhooks compatible), stdlib only.

Copy verify() into your receiver. Pass it the raw request body bytes exactly as received:
re-serialising parsed JSON changes the bytes and breaks the signature.

    verify(secret, request.headers["webhook-id"], request.headers["webhook-timestamp"],
           request.headers["webhook-signature"], raw_body)

(The same values are also sent as X-BlameTrail-Delivery, X-BlameTrail-Timestamp and
X-BlameTrail-Signature.)

CLI, for checking a captured delivery by hand:

    python3 verify_signature.py --secret whsec_... --id dlv_... --timestamp 1700000000 \
        --signature 'v1,...' --body-file body.json
"""

import argparse
import base64
import binascii
import hashlib
import hmac
import re
import sys
import time

SECRET_PREFIX = "whsec_"
# Entries beyond this many are ignored, so a hostile header cannot cost unbounded CPU.
MAX_SIGNATURES = 16
# ASCII digits only: Python's int() would also accept signs, spaces, underscores and
# non-ASCII digits, which the sender never produces.
_TIMESTAMP_RE = re.compile(r"[0-9]{1,19}")


def _decode_secret(secret):
    raw = secret.strip()
    if raw.startswith(SECRET_PREFIX):
        raw = raw[len(SECRET_PREFIX):]
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("invalid secret: not standard base64") from exc
    if not 24 <= len(key) <= 64:
        raise ValueError("invalid secret: key is %d bytes, want 24 to 64" % len(key))
    return key


def verify(secret, msg_id, timestamp, signature_header, body: bytes, tolerance=300):
    """Return True if any v1 signature in signature_header matches, else False.

    Raises ValueError for a bad secret, a missing value, or a timestamp that is not
    decimal Unix seconds or lies more than `tolerance` seconds from now (either way).
    """
    key = _decode_secret(secret)
    if not msg_id or not timestamp or not signature_header:
        raise ValueError("missing message id, timestamp or signature")
    timestamp = str(timestamp)
    if not _TIMESTAMP_RE.fullmatch(timestamp):
        raise ValueError("invalid timestamp %r" % timestamp)
    ts = int(timestamp)
    now = int(time.time())
    if now - ts > tolerance:
        raise ValueError("timestamp too old")
    if ts - now > tolerance:
        raise ValueError("timestamp too far in the future")

    # Sign the normalised number, as the sender and Standard Webhooks libraries do.
    content = ("%s.%d." % (msg_id, ts)).encode("utf-8") + body
    expected = hmac.new(key, content, hashlib.sha256).digest()

    entries = [e for e in signature_header.split(" ") if e][:MAX_SIGNATURES]
    for entry in entries:
        version, _, encoded = entry.partition(",")
        if version != "v1":
            continue
        try:
            candidate = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(expected, candidate):
            return True
    return False


def main(argv=None):
    parser = argparse.ArgumentParser(description="Verify a BlameTrail webhook signature.")
    parser.add_argument("--secret", required=True, help="signing secret (whsec_...)")
    parser.add_argument("--id", required=True, help="webhook-id / X-BlameTrail-Delivery")
    parser.add_argument("--timestamp", required=True, help="webhook-timestamp value")
    parser.add_argument("--signature", required=True, help="webhook-signature value")
    parser.add_argument("--body-file", required=True, help="file holding the raw body")
    parser.add_argument("--tolerance", type=int, default=300, help="seconds (default 300)")
    args = parser.parse_args(argv)

    try:
        with open(args.body_file, "rb") as f:
            body = f.read()
        ok = verify(args.secret, args.id, args.timestamp, args.signature, body, args.tolerance)
    except (OSError, ValueError) as exc:
        print("not verified: %s" % exc)
        return 1
    if not ok:
        print("not verified: no matching signature")
        return 1
    print("verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
