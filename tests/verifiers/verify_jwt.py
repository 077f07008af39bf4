#!/usr/bin/python3
"""An independent relying party for cordon's tokens, built on PyJWT and
cryptography (OpenSSL), sharing no code with cordon.

usage: verify_jwt.py JWKS_FILE AUDIENCE [--call ID] [--tool NAME]
                     [--argv-sha256 HEX] < tokens (one per line)

For each token prints `ok SUB JTI CLAIMS` or `refused REASON`, keeping the
jti of every accepted token so that a token presented twice is refused as
a replay. With --call, --tool or --argv-sha256 the relying party serves
one call and refuses a token bound to another (or to none): the digest is
SHA-256 over each argument followed by a NUL byte. Exit status 0 when
every token was accepted, 1 otherwise.
"""
import argparse
import json
import sys

import jwt


class WrongBinding(jwt.InvalidTokenError):
    pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("jwks_file")
    ap.add_argument("audience")
    ap.add_argument("--call", type=int)
    ap.add_argument("--tool")
    ap.add_argument("--argv-sha256", dest="argv_sha256")
    args = ap.parse_args()
    jwks_file, audience = args.jwks_file, args.audience
    expect = {"call": args.call, "tool": args.tool, "argv_sha256": args.argv_sha256}
    with open(jwks_file) as f:
        keys = jwt.PyJWKSet.from_dict(json.load(f))
    by_kid = {k.key_id: k for k in keys.keys}
    seen = set()
    all_ok = True
    for line in sys.stdin:
        token = line.strip()
        if not token:
            continue
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            if kid not in by_kid:
                raise jwt.InvalidTokenError("unknown kid %r" % kid)
            claims = jwt.decode(
                token,
                by_kid[kid].key,
                algorithms=["ES256"],
                audience=audience,
                options={"require": ["exp", "iat", "sub", "aud", "jti"]},
            )
            if not claims["sub"].startswith("spiffe://"):
                raise jwt.InvalidTokenError("sub is not a SPIFFE ID")
            for claim, want in expect.items():
                if want is not None and claims.get(claim) != want:
                    raise WrongBinding(
                        "bound to %s %r, not %r" % (claim, claims.get(claim), want)
                    )
            if claims["jti"] in seen:
                raise jwt.InvalidTokenError("replayed jti %s" % claims["jti"])
            seen.add(claims["jti"])
            print("ok", claims["sub"], claims["jti"], json.dumps(claims, sort_keys=True))
        except jwt.PyJWTError as e:
            all_ok = False
            print("refused", type(e).__name__, e)
    sys.stdout.flush()
    sys.exit(0 if all_ok else 1)


main()
