/**
 * Request bodies read with a ceiling, for every handler that reads one itself (/getproxy, the
 * token, revocation and registration endpoints in front of oidc-provider).
 *
 * A body over the ceiling is answered 413 and the connection closed (lib/webHardening.ts). What
 * matters here is how reading stops: the request is paused, never destroyed. Destroying it
 * destroys the socket at once, and closing a TCP socket with unread input sends a reset
 * (RFC 9293 §3.6.1, RFC 1122 §4.2.2.13) that makes the sender's kernel discard the 413 it had
 * received but not yet read: the client saw a reset instead of the answer. Paused, the socket
 * stops reading (backpressure) and the 413 goes out followed by an orderly close.
 */
import type { IncomingMessage } from "node:http";

/** oidc-provider's own limit for the form posts it reads (lib/shared/selective_body.js). */
export const FORM_BODY_LIMIT = 56 * 1024;

export type BoundedBody = { body: Buffer } | { tooLarge: true };

/**
 * The whole body, or `{ tooLarge: true }` as soon as the bytes received pass `limit` (then nothing
 * more is read). Rejects if the request fails or the sender aborts it.
 *
 * A declared Content-Length over the limit is not refused before reading: a request nobody started
 * reading is drained to its end by Node once answered (its `_dump`), which is what must not happen;
 * reading up to the limit first costs at most `limit` bytes.
 */
export function readBoundedBody(req: IncomingMessage, limit: number): Promise<BoundedBody> {
  // Nothing will be emitted any more: read already (empty, as iterating it would give), or gone.
  if (req.readableEnded) return Promise.resolve({ body: Buffer.alloc(0) });
  if (req.destroyed) return Promise.reject(new Error("the request is closed"));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const settle = () => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("close", onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        settle();
        req.pause();
        return resolve({ tooLarge: true });
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      settle();
      resolve({ body: Buffer.concat(chunks, size) });
    };
    const onError = (e: Error) => {
      settle();
      reject(e);
    };
    // Closed before its end (the sender went away; an error event may or may not come first): never leave the caller waiting.
    const onClose = () => onError(new Error("the connection closed before the request body ended"));
    req.on("data", onData);
    req.once("end", onEnd);
    req.once("error", onError);
    req.once("close", onClose);
  });
}
