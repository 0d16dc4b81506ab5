"""Lago's documented check, on the events the Rust bench checks: the JWT
signature decoded with PyJWT against the organization's public key (RS256)
and its `data` compared with the body, or the HMAC signature recomputed;
then the body parsed. Prints one JSON line per mode: {"mode", "size",
"ns_per_op"}."""

import base64
import hashlib
import hmac
import json
import pathlib
import time

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

SIZE = 4096
# The same head the Rust bench includes.
HEAD = (pathlib.Path(__file__).parent / "event-head.json.part").read_text()
TAIL = '"}}}'
BODY = HEAD + "x" * (SIZE - len(HEAD) - len(TAIL)) + TAIL
ISSUER = "http://lago.bench"
HMAC_KEY = b"lago_bench_only"

# A key made for this run, as the Rust bench does.
private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
public_key = private_key.public_key()
token = jwt.encode({"data": BODY, "iss": ISSUER}, private_key, algorithm="RS256")
signature = base64.b64encode(hmac.new(HMAC_KEY, BODY.encode(), hashlib.sha256).digest()).decode()


def check_jwt():
    decoded = jwt.decode(token, public_key, algorithms=["RS256"], issuer=ISSUER)
    assert decoded["data"] == BODY
    return json.loads(BODY)


def check_hmac():
    expected = base64.b64encode(hmac.new(HMAC_KEY, BODY.encode(), hashlib.sha256).digest()).decode()
    assert hmac.compare_digest(expected, signature)
    return json.loads(BODY)


for mode, check in (("hmac", check_hmac), ("jwt", check_jwt)):
    for _ in range(500):
        check()
    iterations = 5000
    start = time.perf_counter_ns()
    for _ in range(iterations):
        check()
    print(json.dumps({"mode": mode, "size": SIZE, "ns_per_op": (time.perf_counter_ns() - start) / iterations}))
