#!/usr/bin/env node
// Verify a BlameTrail webhook delivery (Standard Webhooks compatible), Node stdlib only.
//
// Copy verify() into your receiver. Pass it the raw request body as a Buffer, exactly as
// received: re-serialising parsed JSON changes the bytes and breaks the signature.
//
//   verify(secret, req.headers['webhook-id'], req.headers['webhook-timestamp'],
//          req.headers['webhook-signature'], rawBody)
//
// (The same values are also sent as X-BlameTrail-Delivery, X-BlameTrail-Timestamp and
// X-BlameTrail-Signature.)
//
// CLI, for checking a captured delivery by hand:
//
//   node verify_signature.js --secret whsec_... --id dlv_... --timestamp 1700000000 \
//       --signature 'v1,...' --body-file body.json
'use strict';

const crypto = require('crypto');
const fs = require('fs');

const SECRET_PREFIX = 'whsec_';
// Entries beyond this many are ignored, so a hostile header cannot cost unbounded CPU.
const MAX_SIGNATURES = 16;
// Buffer.from(s, 'base64') silently skips bad characters, so validate the shape first.
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function decodeBase64(s) {
  return BASE64_RE.test(s) ? Buffer.from(s, 'base64') : null;
}

function decodeSecret(secret) {
  let raw = String(secret).trim();
  if (raw.startsWith(SECRET_PREFIX)) raw = raw.slice(SECRET_PREFIX.length);
  const key = raw === '' ? null : decodeBase64(raw);
  if (key === null) throw new RangeError('invalid secret: not standard base64');
  if (key.length < 24 || key.length > 64) {
    throw new RangeError(`invalid secret: key is ${key.length} bytes, want 24 to 64`);
  }
  return key;
}

/**
 * Returns true if any v1 signature in signatureHeader matches, else false.
 * Throws RangeError for a bad secret, a missing value, or a timestamp that is not decimal
 * Unix seconds or lies more than `tolerance` seconds from now (either way).
 */
function verify(secret, msgId, timestamp, signatureHeader, body, tolerance = 300) {
  const key = decodeSecret(secret);
  if (!msgId || !timestamp || !signatureHeader) {
    throw new RangeError('missing message id, timestamp or signature');
  }
  timestamp = String(timestamp);
  if (!/^[0-9]{1,19}$/.test(timestamp)) throw new RangeError(`invalid timestamp ${JSON.stringify(timestamp)}`);
  // BigInt keeps 19-digit values exact, where Number would round.
  const ts = BigInt(timestamp);
  const now = BigInt(Math.floor(Date.now() / 1000));
  const tol = BigInt(Math.floor(tolerance));
  if (now - ts > tol) throw new RangeError('timestamp too old');
  if (ts - now > tol) throw new RangeError('timestamp too far in the future');

  // Sign the normalised number, as the sender and Standard Webhooks libraries do.
  const expected = crypto.createHmac('sha256', key)
    .update(`${msgId}.${ts}.`, 'utf8')
    .update(Buffer.isBuffer(body) ? body : Buffer.from(body))
    .digest();

  const entries = String(signatureHeader).split(' ').filter(Boolean).slice(0, MAX_SIGNATURES);
  for (const entry of entries) {
    const comma = entry.indexOf(',');
    if (comma < 0 || entry.slice(0, comma) !== 'v1') continue;
    const candidate = decodeBase64(entry.slice(comma + 1));
    // timingSafeEqual throws on a length mismatch; the length of a MAC is no secret.
    if (candidate && candidate.length === expected.length && crypto.timingSafeEqual(expected, candidate)) {
      return true;
    }
  }
  return false;
}

function parseArgs(argv) {
  const args = { tolerance: '300' };
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/s.exec(argv[i]);
    if (!m) throw new Error(`unexpected argument ${argv[i]}`);
    const value = m[2] !== undefined ? m[2] : argv[++i];
    if (value === undefined) throw new Error(`--${m[1]} needs a value`);
    args[m[1]] = value;
  }
  for (const name of ['secret', 'id', 'timestamp', 'signature', 'body-file']) {
    if (args[name] === undefined) throw new Error(`--${name} is required`);
  }
  return args;
}

function main(argv) {
  let args;
  try {
    args = parseArgs(argv);
  } catch (err) {
    console.error(`usage: node verify_signature.js --secret S --id ID --timestamp T --signature SIG --body-file F [--tolerance SECONDS]\n${err.message}`);
    return 2;
  }
  try {
    const body = fs.readFileSync(args['body-file']);
    if (verify(args.secret, args.id, args.timestamp, args.signature, body, Number(args.tolerance))) {
      console.log('verified');
      return 0;
    }
    console.log('not verified: no matching signature');
  } catch (err) {
    console.log(`not verified: ${err.message}`);
  }
  return 1;
}

module.exports = { verify };

if (require.main === module) {
  process.exitCode = main(process.argv.slice(2));
}
