import { portal } from "../../../../lib/runtime";
import { attachment, badRequest, clientIp, htmlError } from "../../../../lib/http";

/** The filtered audit log as CSV or JSON lines, streamed. The export itself is audited. */
export async function GET(request: Request) {
  try {
    const p = portal();
    const viewer = await p.console.gate.require({ cookie: request.headers.get("cookie") ?? "", ip: clientIp(request) }, "admin", "audit.export");
    const params = new URL(request.url).searchParams;
    const format = params.get("format");
    if (format !== "csv" && format !== "jsonl") throw badRequest("format must be csv or jsonl");
    params.delete("format");
    const rows = p.console.audit.exportAudit(params, format);
    // Pull the first chunk now so a bad filter is a 400, not a broken download.
    const first = await rows.next();
    await p.console.audit.recordAuditExport(viewer, params, format, clientIp(request));
    const encoder = new TextEncoder();
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        if (first.done) controller.close();
        else controller.enqueue(encoder.encode(first.value));
      },
      async pull(controller) {
        const next = await rows.next();
        if (next.done) controller.close();
        else controller.enqueue(encoder.encode(next.value));
      },
    });
    const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, "");
    return attachment(`certbridge-audit-${stamp}.${format}`, stream, format === "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson");
  } catch (e) {
    return htmlError(e, "Export failed");
  }
}
