#!/usr/bin/env node
import { main } from "../src/proxyInfo";

process.exitCode = main(process.argv.slice(2));
