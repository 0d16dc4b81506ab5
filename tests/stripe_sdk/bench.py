"""Stripe's Python library checking the same events the Rust bench checks:
`Webhook.construct_event` (HMAC-SHA256 over "{t}.{payload}", then JSON).
Prints one JSON line per size: {"size", "ns_per_op"}."""

import json
import pathlib
import time

import stripe

HEAD = (pathlib.Path(__file__).parent / "event-head.json.part").read_text()
TAIL = '"}}}'
SECRET = "whsec_bench_only"

for size in (1024, 4096, 65536):
    payload = HEAD + "x" * (size - len(HEAD) - len(TAIL)) + TAIL
    timestamp = int(time.time())
    signature = stripe.WebhookSignature._compute_signature(f"{timestamp}.{payload}", SECRET)
    header = f"t={timestamp},v1={signature}"

    def run(n):
        for _ in range(n):
            stripe.Webhook.construct_event(payload, header, SECRET)

    run(500)
    iterations = 1000 if size > 10000 else 10000
    start = time.perf_counter_ns()
    run(iterations)
    print(json.dumps({"size": size, "ns_per_op": (time.perf_counter_ns() - start) / iterations}))
