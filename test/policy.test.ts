/**
 * Proxy lifetime policy (lib/issuance/policy.ts): a request above a cap is
 * clamped and reported, never refused; a request that is not a usable
 * lifetime is an invalid_request.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { CertbridgeError } from "../lib/errors";
import { decideLifetime, MIN_PROXY_SECONDS, type LifetimeDecision, type LifetimeInput } from "../lib/issuance/policy";

const HOUR = 3600;
const DAY = 86400;
const base = { defaultSeconds: 12 * HOUR, maxSeconds: 10 * DAY };

test("MIN_PROXY_SECONDS is one minute", () => {
  assert.equal(MIN_PROXY_SECONDS, 60);
});

test("decideLifetime: accepted and clamped requests", () => {
  const cases: { name: string; input: LifetimeInput; want: LifetimeDecision }[] = [
    { name: "default used when absent", input: { ...base }, want: { seconds: 12 * HOUR, clamped: false } },
    { name: "default used when absent, client cap above it", input: { ...base, clientMaxSeconds: DAY }, want: { seconds: 12 * HOUR, clamped: false } },
    { name: "requested under the caps is kept", input: { ...base, requestedSeconds: 2 * HOUR }, want: { seconds: 2 * HOUR, clamped: false } },
    { name: "requested above the default but under the caps is kept", input: { ...base, requestedSeconds: 3 * DAY }, want: { seconds: 3 * DAY, clamped: false } },
    { name: "exactly the minimum", input: { ...base, requestedSeconds: 60 }, want: { seconds: 60, clamped: false } },
    { name: "exactly the global max is not clamped", input: { ...base, requestedSeconds: 10 * DAY }, want: { seconds: 10 * DAY, clamped: false } },
    { name: "one second over the global max", input: { ...base, requestedSeconds: 10 * DAY + 1 }, want: { seconds: 10 * DAY, clamped: true, cappedBy: "global" } },
    { name: "clamped by the global max", input: { ...base, requestedSeconds: 30 * DAY }, want: { seconds: 10 * DAY, clamped: true, cappedBy: "global" } },
    { name: "clamped by a lower client max", input: { ...base, requestedSeconds: 30 * DAY, clientMaxSeconds: DAY }, want: { seconds: DAY, clamped: true, cappedBy: "client" } },
    { name: "client max applies below the global max too", input: { ...base, requestedSeconds: 2 * DAY, clientMaxSeconds: DAY }, want: { seconds: DAY, clamped: true, cappedBy: "client" } },
    { name: "exactly the client max is not clamped", input: { ...base, requestedSeconds: DAY, clientMaxSeconds: DAY }, want: { seconds: DAY, clamped: false } },
    { name: "client max higher than global → global", input: { ...base, requestedSeconds: 30 * DAY, clientMaxSeconds: 20 * DAY }, want: { seconds: 10 * DAY, clamped: true, cappedBy: "global" } },
    { name: "client max equal to global → global", input: { ...base, requestedSeconds: 30 * DAY, clientMaxSeconds: 10 * DAY }, want: { seconds: 10 * DAY, clamped: true, cappedBy: "global" } },
    { name: "default above the client cap is clamped", input: { ...base, clientMaxSeconds: HOUR }, want: { seconds: HOUR, clamped: true, cappedBy: "client" } },
    { name: "default above the global cap is clamped", input: { defaultSeconds: 2 * DAY, maxSeconds: DAY }, want: { seconds: DAY, clamped: true, cappedBy: "global" } },
  ];
  for (const c of cases) assert.deepEqual(decideLifetime(c.input), c.want, c.name);
});

test("decideLifetime: unusable lifetimes are invalid_request", () => {
  const cases: { name: string; requestedSeconds: number }[] = [
    { name: "below the minimum (59 s)", requestedSeconds: 59 },
    { name: "zero", requestedSeconds: 0 },
    { name: "negative", requestedSeconds: -3600 },
    { name: "non-integer", requestedSeconds: 1.5 },
    { name: "non-integer above the minimum", requestedSeconds: 3600.5 },
    { name: "NaN", requestedSeconds: Number.NaN },
    { name: "Infinity", requestedSeconds: Number.POSITIVE_INFINITY },
    { name: "beyond safe integers", requestedSeconds: 2 ** 53 },
  ];
  for (const c of cases) {
    assert.throws(
      () => decideLifetime({ ...base, requestedSeconds: c.requestedSeconds }),
      (e: unknown) => {
        assert.ok(e instanceof CertbridgeError, `${c.name}: expected a CertbridgeError, got ${String(e)}`);
        assert.equal(e.code, "invalid_request", c.name);
        assert.equal(e.status, 400, c.name);
        assert.match(e.message, /whole number of seconds, at least 60/, c.name);
        return true;
      },
      c.name,
    );
  }
});

test("decideLifetime: an invalid default is refused too", () => {
  assert.throws(() => decideLifetime({ defaultSeconds: 30, maxSeconds: DAY }), (e: unknown) => e instanceof CertbridgeError && e.code === "invalid_request");
});
