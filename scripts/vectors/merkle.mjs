// Writes tests/vectors/merkle.json: Merkle trees, proofs and multiproofs of fixed leaf sets, as
// OpenZeppelin's own JavaScript library builds them. protocol/merkle.py must match these byte for
// byte, which is what lets MerkleProof.sol and @openzeppelin/merkle-tree verify our proofs.
//
// Run from the repository root: node scripts/vectors/merkle.mjs > tests/vectors/merkle.json

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

import { keccak_256 } from "@noble/hashes/sha3.js";
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import { standardLeafHash } from "@openzeppelin/merkle-tree/dist/hashes.js";

const require = createRequire(import.meta.url);
const ozVersion = JSON.parse(
  readFileSync(require.resolve("@openzeppelin/merkle-tree/package.json"), "utf8"),
).version;

const ENCODING = ["bytes32", "address", "uint256"];
const SIZES = [1, 2, 3, 7, 16, 33];
// Edge values of uint256 and ordinary ones; leaf i of every set takes WEIGHTS[i % length].
const WEIGHTS = [
  1n,
  0n,
  2n ** 255n,
  2n ** 255n - 1n,
  2n ** 256n - 1n,
  10n ** 18n,
  2n ** 255n + 12345n,
  7n,
];

const hex = (bytes) => "0x" + Buffer.from(bytes).toString("hex");
const hash = (text) => keccak_256(new TextEncoder().encode(text));

// EIP-55, so that the values look as wallets and explorers write addresses.
function checksum(address) {
  const digits = Buffer.from(address).toString("hex");
  const mask = Buffer.from(keccak_256(new TextEncoder().encode(digits))).toString("hex");
  let out = "0x";
  for (let i = 0; i < digits.length; i++) {
    out += parseInt(mask[i], 16) >= 8 ? digits[i].toUpperCase() : digits[i];
  }
  return out;
}

function leafSet(size) {
  const values = [];
  for (let i = 0; i < size; i++) {
    const id = hex(hash(`workwork merkle vector contribution ${size}/${i}`));
    // Five payout addresses per set, so bigger sets pay one address for several leaves.
    const payout = checksum(hash(`workwork merkle vector payout ${size}/${i % 5}`).slice(12));
    values.push([id, payout, WEIGHTS[i % WEIGHTS.length].toString()]);
  }
  return values;
}

function vector(size) {
  const values = leafSet(size);
  const tree = StandardMerkleTree.of(values, ENCODING);
  const picked = values.map((_, i) => i).filter((i) => i % 3 !== 2);
  const multi = tree.getMultiProof(picked);
  return {
    name: `${size} ${size === 1 ? "leaf" : "leaves"}`,
    root: tree.root,
    leaves: values.map((value, i) => ({
      value,
      hash: standardLeafHash(ENCODING, value),
      proof: tree.getProof(i),
    })),
    multiproof: {
      indices: picked,
      leaves: multi.leaves,
      proof: multi.proof,
      proofFlags: multi.proofFlags,
    },
    dump: tree.dump(),
  };
}

const out = {
  generator: `scripts/vectors/merkle.mjs with @openzeppelin/merkle-tree ${ozVersion}`,
  leafEncoding: ENCODING,
  sets: SIZES.map(vector),
};
process.stdout.write(JSON.stringify(out, null, 2) + "\n");
