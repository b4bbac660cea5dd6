#!/usr/bin/env node
import { main } from "../src/proxyInit";

process.exitCode = await main(process.argv.slice(2));
