// Stripe's official Node library, driven by the cross-check tests.
// Reads one JSON request on stdin, writes one JSON answer on stdout.
//   {"op":"sign","payload":…,"secret":…,"timestamp":…} → {"header":…}
//   {"op":"verify","payload":…,"header":…,"secret":…,"tolerance":…} → {"ok":true} | {"ok":false,"error":…}
'use strict';

// The library needs an API key to construct; webhook checks never use it.
const stripe = require('stripe')('sk_test_unused_by_webhook_checks');

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => (input += chunk));
process.stdin.on('end', () => {
  const request = JSON.parse(input);
  if (request.op === 'sign') {
    const header = stripe.webhooks.generateTestHeaderString({
      payload: request.payload,
      secret: request.secret,
      timestamp: request.timestamp,
    });
    process.stdout.write(JSON.stringify({ header }));
  } else if (request.op === 'verify') {
    try {
      stripe.webhooks.constructEvent(request.payload, request.header, request.secret, request.tolerance);
      process.stdout.write(JSON.stringify({ ok: true }));
    } catch (error) {
      process.stdout.write(JSON.stringify({ ok: false, error: String(error.message) }));
    }
  } else {
    process.exitCode = 2;
  }
});
