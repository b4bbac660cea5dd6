#!/usr/bin/env node
// Log in with the device flow and get a proxy, or keep one fresh (--renew). TypeScript sources run through tsx's loader.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../cli/proxyInit.ts");
process.exitCode = await main(process.argv.slice(2));
