// Re-derives the bytes of tests/vectors/records.json with independent JavaScript libraries
// (@msgpack/msgpack, @noble/ed25519, @noble/hashes) from the fields and seeds alone.
// Prints {name: {author, body, signature, envelope, id}} as JSON; the Python tests compare it
// with the committed vectors.
//
// Run: node scripts/vectors/records.mjs [tests/vectors/records.json]
import { readFileSync } from "node:fs";
import { encode } from "@msgpack/msgpack";
import * as ed from "@noble/ed25519";
import { sha256, sha512 } from "@noble/hashes/sha2.js";

ed.hashes.sha512 = sha512;

const hex = (bytes) => Buffer.from(bytes).toString("hex");
const unhex = (text) => Uint8Array.from(Buffer.from(text, "hex"));
const FORMAT_VERSION = 1;

function value([, type, v]) {
  switch (type) {
    case "int": return v;
    case "str": return v;
    case "bin": return unhex(v);
    case "str[]": return v;
    case "bin[]": return v.map(unhex);
    default: throw new Error(`unknown field type ${type}`);
  }
}

const path = process.argv[2] ?? "tests/vectors/records.json";
const vectors = JSON.parse(readFileSync(path, "utf8"));
const domain = unhex(vectors.signing_domain);
const out = {};
for (const c of vectors.cases) {
  const body = encode([FORMAT_VERSION, c.kind, ...c.fields.map(value)]);
  const seed = unhex(c.seed);
  const author = ed.getPublicKey(seed);
  const message = new Uint8Array([...domain, ...body]);
  const signature = ed.sign(message, seed);
  const envelope = encode([author, signature, body]);
  out[c.name] = {
    author: hex(author),
    body: hex(body),
    signature: hex(signature),
    envelope: hex(envelope),
    id: hex(sha256(envelope)),
  };
}
console.log(JSON.stringify(out, null, 1));
