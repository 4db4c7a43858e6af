#!/usr/bin/env bun
/**
 * train_vocab — the command line. This file only wires cac to the commands in src/cli/;
 * each command module is imported lazily so `--help` stays instant.
 */
import { runCli } from "../src/cli/main.ts";

await runCli(process.argv);
