// Compiles the project's Solidity contracts with the pinned solc (the npm package `solc`) and
// writes one JSON artifact per contract next to its source: ABI, creation and runtime bytecode,
// compiler version, settings, and the sha256 of the standard JSON input that produced them.
//
// The build is reproducible: the input holds every source file by content (OpenZeppelin's from
// node_modules) and pinned settings, so the same checkout and node_modules give the same bytes,
// which tests/chain/test_artifact.py checks. `--input SOURCE` prints that input, which is what a
// block explorer asks for to verify a deployed contract ("Solidity (Standard-Json-Input)").
//
// Usage, from anywhere in the repository:
//   node scripts/contract/build.mjs                 write every artifact next to its source
//   node scripts/contract/build.mjs --out-dir DIR   write them to DIR/<Contract>.json instead
//   node scripts/contract/build.mjs --input SOURCE  print one source's standard JSON input

import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

// The bytes depend on the compiler build, so a different solc is refused rather than used.
const COMPILER = "0.8.37+commit.f401782d";

// Prague is the newest fork that both py-evm 0.12 (eth-tester's EVM) and anvil 1.7 run; solc
// 0.8.37 would default to Osaka. Many runs: every function is called far more often than the
// contract is deployed. The metadata hash stays in the bytecode so that Sourcify can match it.
const SETTINGS = {
  evmVersion: "prague",
  optimizer: { enabled: true, runs: 10000 },
  viaIR: false,
  metadata: { bytecodeHash: "ipfs" },
  outputSelection: {
    "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] },
  },
};

// Each source compiles on its own, so each has its own input and hash. Test-only contracts live
// under tests/ and never in the protocol package.
const TARGETS = [
  { source: "protocol/contracts/WorkWorkSettlement.sol", contracts: ["WorkWorkSettlement"] },
  { source: "tests/chain/contracts/Payees.sol", contracts: ["RejectingPayee", "ReentrantPayee"] },
  {
    source: "tests/chain/contracts/Tokens.sol",
    contracts: ["TestToken", "NoReturnToken", "FeeToken", "ReentrantToken"],
  },
  { source: "tests/chain/contracts/Wallets.sol", contracts: ["SigningWallet"] },
];

function fail(message) {
  process.stderr.write(`build-contract: ${message}\n`);
  process.exit(1);
}

function loadSolc() {
  let solc;
  try {
    solc = require("solc");
  } catch {
    fail("the npm package solc is missing: run scripts/setup (or npm install)");
  }
  if (!solc.version().startsWith(`${COMPILER}.`)) {
    fail(`solc ${COMPILER} is pinned, node_modules has ${solc.version()}`);
  }
  return solc;
}

// Compiles a standard JSON input given as a string, exiting on any compiler error. Warnings are
// printed only when asked, so that a build that compiles twice shows them once.
function compile(solc, text, imports, { warnings = true } = {}) {
  const output = JSON.parse(solc.compile(text, imports && { import: imports }));
  const errors = (output.errors ?? []).filter((e) => e.severity === "error");
  for (const e of warnings ? (output.errors ?? []) : errors) process.stderr.write(e.formattedMessage);
  if (errors.length) fail(`${errors.length} compiler error(s)`);
  return output;
}

// Returns the standard JSON input of one source, with every file it imports inlined by content.
// A first compile with an import callback finds those files; only @openzeppelin/ imports are
// resolved, from node_modules, so that nothing else on the machine can leak into a build.
function standardInput(solc, source) {
  const sources = { [source]: { content: readFileSync(path.join(ROOT, source), "utf8") } };
  const imported = {};
  const resolve = (name) => {
    if (!name.startsWith("@openzeppelin/")) return { error: `import outside @openzeppelin/: ${name}` };
    try {
      imported[name] = { content: readFileSync(path.join(ROOT, "node_modules", name), "utf8") };
    } catch (err) {
      return { error: `${name}: ${err.message}` };
    }
    return { contents: imported[name].content };
  };
  const discovery = JSON.stringify({ language: "Solidity", sources, settings: SETTINGS });
  compile(solc, discovery, resolve, { warnings: false });
  for (const name of Object.keys(imported).sort()) sources[name] = imported[name];
  return { language: "Solidity", sources, settings: SETTINGS };
}

function main(argv) {
  const solc = loadSolc();
  if (argv[0] === "--input" && argv.length === 2) {
    const target = TARGETS.find((t) => t.source === argv[1]);
    if (!target) fail(`unknown source ${argv[1]}; known: ${TARGETS.map((t) => t.source).join(", ")}`);
    process.stdout.write(JSON.stringify(standardInput(solc, target.source)));
    return;
  }
  let outDir = null;
  if (argv[0] === "--out-dir" && argv.length === 2) outDir = path.resolve(argv[1]);
  else if (argv.length) fail("usage: build.mjs [--out-dir DIR | --input SOURCE]");

  for (const { source, contracts } of TARGETS) {
    const text = JSON.stringify(standardInput(solc, source));
    // The artifact records the hash of exactly the string the compiler was given.
    const output = compile(solc, text, null);
    const inputSha256 = createHash("sha256").update(text).digest("hex");
    for (const name of contracts) {
      const contract = output.contracts[source]?.[name];
      if (!contract) fail(`${source} has no contract ${name}`);
      const artifact = {
        contractName: name,
        sourceName: source,
        compiler: { name: "solc", version: COMPILER },
        settings: SETTINGS,
        inputSha256,
        abi: contract.abi,
        bytecode: `0x${contract.evm.bytecode.object}`,
        deployedBytecode: `0x${contract.evm.deployedBytecode.object}`,
      };
      const dir = outDir ?? path.join(ROOT, path.dirname(source));
      mkdirSync(dir, { recursive: true });
      const file = path.join(dir, `${name}.json`);
      writeFileSync(file, `${JSON.stringify(artifact, null, 2)}\n`);
      process.stderr.write(`wrote ${path.relative(process.cwd(), file)}\n`);
    }
  }
}

main(process.argv.slice(2));
