#!/usr/bin/env node
// Show what is in a proxy file, or check it (--exists, --valid HH:MM). TypeScript sources run through tsx's loader.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../cli/proxyInfo.ts");
process.exitCode = main(process.argv.slice(2));
