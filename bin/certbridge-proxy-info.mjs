#!/usr/bin/env node
// Show what is in a proxy file, or check it (--exists, --valid 12h). The sources are the
// standalone package's (packages/proxy-cli), run from the checkout through tsx's loader.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../packages/proxy-cli/src/proxyInfo.ts");
process.exitCode = main(process.argv.slice(2));
