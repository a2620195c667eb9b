"""Mint bearer tokens for Writ's MCP gateway from a local P-256 key pair.

The key pair lives in a directory (default `./writ-mcp-keys`): `key.pem` (private, made on first
use) and `jwks.json` (the public half as a JWKS, for the gateway's `jwks_file`). Used by the tests
and by the README walk-through:

    python tests/clients/mcp/mint.py --sub anne --client planner \
        --aud http://127.0.0.1:8080/mcp/demo

`--act planner,researcher` nests RFC 8693 actors, earliest first (the last one is the current
actor, the top-level `act`).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

DEFAULT_ISSUER = "https://idp.writ.test"
KID = "writ-mcp-1"


def load_or_create_key(directory: Path) -> ec.EllipticCurvePrivateKey:
    """The signing key in `directory`, made (with its `jwks.json`) when absent."""
    directory.mkdir(parents=True, exist_ok=True)
    key_file = directory / "key.pem"
    if key_file.exists():
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        key_file.write_bytes(pem)
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": KID, "use": "sig", "alg": "ES256"})
    (directory / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
    return key


def nest_actors(actors: list[str]) -> dict | None:
    """RFC 8693 `act` for actors listed earliest first: the last is the outermost claim."""
    act = None
    for actor in actors:
        act = {"sub": actor, **({"act": act} if act else {})}
    return act


def claims(
    sub: str,
    audience: str,
    *,
    client: str | None = None,
    actors: list[str] | None = None,
    issuer: str = DEFAULT_ISSUER,
    ttl: int = 600,
    extra: dict | None = None,
) -> dict:
    now = int(time.time())
    body: dict = {"iss": issuer, "aud": audience, "sub": sub, "iat": now, "exp": now + ttl}
    if client:
        body["client_id"] = client
    act = nest_actors(actors or [])
    if act:
        body["act"] = act
    body.update(extra or {})
    return body


def sign(body: dict, key: ec.EllipticCurvePrivateKey, kid: str = KID) -> str:
    return jwt.encode(body, key, algorithm="ES256", headers={"kid": kid})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sub", required=True, help="the user (`sub`)")
    parser.add_argument("--client", help="the agent (`client_id`)")
    parser.add_argument("--act", default="", help="actors, earliest first, comma-separated")
    parser.add_argument("--aud", required=True, help="the server's resource URI: {public_url}/mcp/{server}")
    parser.add_argument("--iss", default=DEFAULT_ISSUER)
    parser.add_argument("--ttl", type=int, default=600, help="seconds until `exp`")
    parser.add_argument("--keys", default="writ-mcp-keys", help="directory of key.pem and jwks.json")
    args = parser.parse_args()
    key = load_or_create_key(Path(args.keys))
    actors = [a for a in args.act.split(",") if a]
    print(sign(claims(args.sub, args.aud, client=args.client, actors=actors, issuer=args.iss, ttl=args.ttl), key))


if __name__ == "__main__":
    main()
