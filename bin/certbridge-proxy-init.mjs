#!/usr/bin/env node
// Log in with the device flow and get a proxy, or keep one fresh (--renew). The sources are the
// standalone package's (packages/proxy-cli), run from the checkout through tsx's loader.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../packages/proxy-cli/src/proxyInit.ts");
process.exitCode = await main(process.argv.slice(2));
