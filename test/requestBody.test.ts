/**
 * lib/requestBody.ts against a real HTTP server and raw client sockets: bodies under the ceiling
 * come back whole, a declared or a streamed excess is refused without reading on, and a sender
 * that goes away rejects the read instead of leaving it waiting.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { PassThrough } from "node:stream";
import type { AddressInfo } from "node:net";
import { readBoundedBody, type BoundedBody } from "../lib/requestBody";

const LIMIT = 1024;

let server: http.Server;
let port = 0;
/** What the handler's read settled to, for the next request. */
let settled: Promise<{ outcome: BoundedBody | { error: string }; receivedAfter: () => number }>;
let report: (r: { outcome: BoundedBody | { error: string }; receivedAfter: () => number }) => void;

function expectRead(): void {
  settled = new Promise((resolve) => (report = resolve));
}

before(async () => {
  server = http.createServer((req, res) => {
    let bytesSeenBySocket = 0;
    req.socket.on("data", (d: Buffer) => (bytesSeenBySocket += d.length));
    const at = () => bytesSeenBySocket;
    readBoundedBody(req, LIMIT).then(
      (outcome) => {
        const snapshot = at();
        report({ outcome, receivedAfter: () => at() - snapshot });
        // A refusal is answered late, so that whether reading stopped is seen before the connection ends.
        if ("tooLarge" in outcome) setTimeout(() => res.writeHead(413, { connection: "close" }).end(), 500);
        else res.writeHead(200, { connection: "close" }).end();
      },
      (e: Error) => {
        report({ outcome: { error: e.message }, receivedAfter: () => 0 });
        res.destroy();
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

function send(head: string, parts: (Buffer | string)[], opts: { thenDestroy?: boolean } = {}): net.Socket {
  const socket = net.connect(port, "127.0.0.1");
  socket.on("error", () => {});
  socket.on("connect", () => {
    socket.write(head);
    for (const p of parts) socket.write(p);
    if (opts.thenDestroy) setTimeout(() => socket.destroy(), 50);
  });
  return socket;
}

test("a body under the ceiling comes back whole, declared or chunked, and an empty one is empty", async () => {
  const body = Buffer.from("a=1&b=".padEnd(LIMIT, "x"));
  expectRead();
  send(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`, [body.subarray(0, 100), body.subarray(100)]).on("data", () => {});
  const declared = (await settled).outcome;
  assert.ok("body" in declared && declared.body.equals(body), "declared length");

  expectRead();
  const chunk = (b: Buffer) => `${b.length.toString(16)}\r\n${b.toString("latin1")}\r\n`;
  send(`POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n`, [chunk(body.subarray(0, 700)), chunk(body.subarray(700)), "0\r\n\r\n"]).on("data", () => {});
  const chunked = (await settled).outcome;
  assert.ok("body" in chunked && chunked.body.equals(body), "chunked");

  expectRead();
  send(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`, []).on("data", () => {});
  const empty = (await settled).outcome;
  assert.ok("body" in empty && empty.body.length === 0, "empty");
});

for (const framing of ["declared", "chunked"] as const) {
  test(`a ${framing} body that passes the ceiling is refused, and what follows is not read`, async () => {
    expectRead();
    const huge = 64 * 1024 * 1024;
    const head = framing === "declared" ? `Content-Length: ${huge}\r\n\r\n` : `Transfer-Encoding: chunked\r\n\r\n${huge.toString(16)}\r\n`;
    const socket = send(`POST / HTTP/1.1\r\nHost: x\r\n${head}`, [Buffer.alloc(LIMIT * 4, 0x61)]);
    socket.on("data", () => {});
    const { outcome, receivedAfter } = await settled;
    assert.deepEqual(outcome, { tooLarge: true });
    // Keep streaming 8 MB: the paused request lets at most the socket's buffers through, not the stream.
    const more = Buffer.alloc(1024 * 1024, 0x61);
    for (let i = 0; i < 8; i++) socket.write(more);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.ok(receivedAfter() < 1024 * 1024, `read ${receivedAfter()} bytes after the refusal`);
    socket.destroy();
  });
}

test("a sender that goes away mid-body rejects the read (no caller left waiting)", async () => {
  expectRead();
  send(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${LIMIT}\r\n\r\n`, ["a=1"], { thenDestroy: true });
  const { outcome } = await settled;
  assert.ok("error" in outcome, JSON.stringify(outcome));
  assert.match(outcome.error, /aborted|closed before the request body ended/);
});

test("a body already read, or a request already closed, settles at once instead of waiting for events that will not come", async () => {
  const withinTwoSeconds = <T>(p: Promise<T>) => Promise.race([p, new Promise<"still waiting">((r) => setTimeout(() => r("still waiting"), 2_000).unref())]);
  const ended = Object.assign(new PassThrough(), { headers: {} });
  ended.resume();
  ended.end("a=1");
  await new Promise((r) => ended.once("end", r));
  const read = await withinTwoSeconds(readBoundedBody(ended as unknown as http.IncomingMessage, LIMIT));
  assert.ok(read !== "still waiting" && "body" in read && read.body.length === 0, JSON.stringify(read));
  const closed = Object.assign(new PassThrough(), { headers: {} });
  closed.destroy();
  const outcome = await withinTwoSeconds(readBoundedBody(closed as unknown as http.IncomingMessage, LIMIT).then(() => "resolved", (e: Error) => e.message));
  assert.match(outcome, /closed/, "rejected");
});
