/**
 * Durations (lib/duration.ts): plain seconds, unit sums and voms-proxy-init's
 * HH:MM; everything else is an error that quotes the input.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { formatDuration, parseDuration } from "../lib/duration";

test("parseDuration: accepted forms", () => {
  const cases: [string, number][] = [
    ["43200", 43200],
    ["1", 1],
    ["12h", 43200],
    ["1d12h", 129600],
    ["1d1h1m1s", 90061],
    ["90m", 5400],
    ["30s", 30],
    ["10d", 864000],
    ["12:30", 45000],
    ["00:30", 1800],
    ["100:00", 360000],
    [" 12h ", 43200],
    ["\t43200\n", 43200],
  ];
  for (const [text, want] of cases) assert.equal(parseDuration(text), want, JSON.stringify(text));
});

test("parseDuration: errors say what was wrong", () => {
  const notADuration = /is not a duration \(use seconds, 12h, 1d12h, 90m or HH:MM\)/;
  const notPositive = /must be a positive duration/;
  const cases: [string, RegExp][] = [
    ["", notADuration],
    ["   ", notADuration],
    ["0", notPositive],
    ["0h", notPositive],
    ["0:00", notPositive],
    ["-5", notADuration],
    ["12x", notADuration],
    ["1.5h", notADuration],
    ["12:60", notADuration],
    ["12:5", notADuration],
    ["h", notADuration],
    ["12 h", notADuration],
    ["12H", notADuration],
    ["99999999999999999999", notPositive], // not a safe integer
  ];
  for (const [text, message] of cases) {
    assert.throws(
      () => parseDuration(text),
      (e: unknown) => {
        assert.ok(e instanceof Error, JSON.stringify(text));
        assert.match(e.message, message, JSON.stringify(text));
        assert.ok(e.message.includes(`"${text}"`), `message should quote the input: ${e.message}`);
        return true;
      },
      JSON.stringify(text),
    );
  }
});

test("formatDuration round-trips through parseDuration", () => {
  for (const s of [1, 59, 60, 61, 3600, 43200, 45000, 86400, 129600, 90061, 864000]) {
    assert.equal(parseDuration(formatDuration(s)), s, String(s));
  }
  assert.equal(formatDuration(129600), "1d12h");
  assert.equal(formatDuration(0), "0s");
});
