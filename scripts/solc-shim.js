#!/usr/bin/env node
// A native-solc stand-in backed by solcjs (npm `solc`), for py-solc-x and forge.
// It answers `--version` like native solc and compiles standard JSON from stdin
// to stdout. solcjs prints a stray line on stdout when loaded, so stdout is
// written only with the compiler's JSON. Imports are resolved against
// --base-path / --include-path / --allow-paths folders and node_modules.
"use strict";
const fs = require("fs");
const path = require("path");

const args = process.argv.slice(2);
const realStdoutWrite = process.stdout.write.bind(process.stdout);
process.stdout.write = () => true; // swallow anything solcjs prints while loading
const solc = require(path.join(__dirname, "..", "node_modules", "solc"));

function emit(text) {
  realStdoutWrite(text.endsWith("\n") ? text : text + "\n");
}

function versionText() {
  return "solc, the solidity compiler commandline interface\nVersion: " + solc.version() + "\n";
}

function searchRoots() {
  const roots = [process.cwd(), path.join(__dirname, "..", "node_modules"), path.join(__dirname, "..")];
  for (let i = 0; i < args.length; i++) {
    if (["--base-path", "--include-path", "--allow-paths"].includes(args[i]) && args[i + 1]) {
      for (const p of args[i + 1].split(",")) roots.push(path.resolve(p));
    }
  }
  return roots;
}

function findImports(importPath) {
  for (const root of searchRoots()) {
    const candidate = path.resolve(root, importPath);
    if (fs.existsSync(candidate) && fs.statSync(candidate).isFile()) {
      return { contents: fs.readFileSync(candidate, "utf8") };
    }
  }
  return { error: "File not found: " + importPath };
}

if (args.includes("--version") || args.includes("-v")) {
  emit(versionText());
  process.exit(0);
}
if (!args.includes("--standard-json")) {
  process.stderr.write("solc-shim: only --version and --standard-json are supported\n");
  process.exit(2);
}
const chunks = [];
process.stdin.on("data", (c) => chunks.push(c));
process.stdin.on("end", () => {
  const input = Buffer.concat(chunks).toString("utf8");
  emit(solc.compile(input, { import: findImports }));
});
