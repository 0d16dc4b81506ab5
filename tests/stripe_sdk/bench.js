// Stripe's Node library checking the same events the Rust bench checks:
// `constructEvent` (HMAC-SHA256 over "{t}.{payload}", then JSON.parse).
// Prints one JSON line per size: {"size", "ns_per_op"}.
'use strict';

const fs = require('fs');
const path = require('path');
const stripe = require('stripe')('sk_test_unused_by_webhook_checks');

const head = fs.readFileSync(path.join(__dirname, 'event-head.json.part'), 'utf8');
const tail = '"}}}';
const secret = 'whsec_bench_only';

for (const size of [1024, 4096, 65536]) {
  const payload = head + 'x'.repeat(size - head.length - tail.length) + tail;
  const header = stripe.webhooks.generateTestHeaderString({ payload, secret, timestamp: Math.floor(Date.now() / 1000) });
  const run = (n) => {
    for (let i = 0; i < n; i++) stripe.webhooks.constructEvent(payload, header, secret);
  };
  run(2000);
  const iterations = size > 10000 ? 5000 : 50000;
  const start = process.hrtime.bigint();
  run(iterations);
  const elapsed = Number(process.hrtime.bigint() - start);
  console.log(JSON.stringify({ size, ns_per_op: elapsed / iterations }));
}
