/** The one HTTP Basic decoder (RFC 6749 §2.3.1) every endpoint uses: a table. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseBasicCredentials } from "../lib/basicAuth";

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");

test("Basic headers: credentials, not Basic (null), or malformed", () => {
  const rows: [string | null | undefined, ReturnType<typeof parseBasicCredentials>][] = [
    [undefined, null],
    [null, null],
    ["", null],
    ["Bearer abc", null],
    ["Basic", null],
    [`Basic ${b64("gw:s3cret")}`, { clientId: "gw", clientSecret: "s3cret" }],
    [`basic   ${b64("gw:s3cret")}  `, { clientId: "gw", clientSecret: "s3cret" }],
    // form-urlencoded parts: "+" is a space, %3A a colon inside the id
    [`Basic ${b64("my+gw%3Aa:p%40ss+word")}`, { clientId: "my gw:a", clientSecret: "p@ss word" }],
    // oidc-agent's public client: an empty secret
    [`Basic ${b64("certbridge-cli:")}`, { clientId: "certbridge-cli", clientSecret: "" }],
    // the secret may hold colons; only the first one separates
    [`Basic ${b64("gw:a:b")}`, { clientId: "gw", clientSecret: "a:b" }],
    [`Basic ${b64("no-colon")}`, "malformed"],
    ["Basic not base64!", "malformed"],
    [`Basic ${b64("gw:%E0%A4%A")}`, "malformed"],
  ];
  for (const [header, expected] of rows) assert.deepEqual(parseBasicCredentials(header), expected, String(header));
});
