import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ASYNC_CONTEXT_FRAME, servingExecArgv } from "../lib/nodeFlags";

describe("the serving processes' Node flags", () => {
  const node22 = new Set([ASYNC_CONTEXT_FRAME, "--no-experimental-async-context-frame", "--import"]);
  const table: { name: string; execArgv: string[]; accepted: Set<string>; expected: string[] }[] = [
    { name: "added where Node accepts it, before the rest", execArgv: ["--import", "tsx"], accepted: node22, expected: [ASYNC_CONTEXT_FRAME, "--import", "tsx"] },
    { name: "not repeated", execArgv: [ASYNC_CONTEXT_FRAME, "--import", "tsx"], accepted: node22, expected: [ASYNC_CONTEXT_FRAME, "--import", "tsx"] },
    { name: "an operator's refusal (Node 22 spelling) stands", execArgv: ["--no-experimental-async-context-frame"], accepted: node22, expected: ["--no-experimental-async-context-frame"] },
    { name: "an operator's refusal (Node 24 spelling) stands", execArgv: ["--no-async-context-frame"], accepted: node22, expected: ["--no-async-context-frame"] },
    { name: "left out where Node does not know it", execArgv: ["--import", "tsx"], accepted: new Set(["--import"]), expected: ["--import", "tsx"] },
  ];
  for (const row of table) {
    test(row.name, () => {
      const before = [...row.execArgv];
      assert.deepEqual(servingExecArgv(row.execArgv, row.accepted), row.expected);
      assert.deepEqual(row.execArgv, before, "the caller's array is not changed");
    });
  }

  const heapTable: { name: string; execArgv: string[]; heapMb: number; expected: string[] }[] = [
    { name: "a heap ceiling is added after the context flag", execArgv: ["--import", "tsx"], heapMb: 256, expected: [ASYNC_CONTEXT_FRAME, "--max-old-space-size=256", "--import", "tsx"] },
    { name: "none for 0 (V8's own sizing)", execArgv: ["--import", "tsx"], heapMb: 0, expected: [ASYNC_CONTEXT_FRAME, "--import", "tsx"] },
    { name: "the operator's own ceiling stands", execArgv: ["--max-old-space-size=1024"], heapMb: 256, expected: [ASYNC_CONTEXT_FRAME, "--max-old-space-size=1024"] },
    { name: "in V8's underscore spelling too", execArgv: ["--max_old_space_size=900"], heapMb: 256, expected: [ASYNC_CONTEXT_FRAME, "--max_old_space_size=900"] },
  ];
  for (const row of heapTable) {
    test(row.name, () => assert.deepEqual(servingExecArgv(row.execArgv, node22, { heapMb: row.heapMb }), row.expected));
  }

  test("this Node accepts the flag (engines: Node 22.13 or later has it)", () => {
    assert.ok(servingExecArgv([]).includes(ASYNC_CONTEXT_FRAME) || Number(process.versions.node.split(".")[0]) >= 24);
  });
});
