// Re-derives the bytes of tests/vectors/records.json with independent JavaScript libraries
// (@msgpack/msgpack, @noble/ed25519, @noble/hashes) from the fields and seeds alone.
// Prints {name: {author, body, signature, envelope, id, links}} as JSON; the Python tests
// compare it with the committed vectors. `links` says, for each field that holds a record id
// (a manifest part's `next`, an epoch root's `manifest`, a vote's `proposal_id`, a decision's
// `proposal_id` and every id of its `ballots`), which case's
// id, derived here, it is: the hash chain from an epoch root through its manifest parts, and a
// vote's proposal, checked independently.
//
// Run: node scripts/vectors/records.mjs [tests/vectors/records.json]
import { readFileSync } from "node:fs";
import { encode } from "@msgpack/msgpack";
import * as ed from "@noble/ed25519";
import { sha256, sha512 } from "@noble/hashes/sha2.js";

ed.hashes.sha512 = sha512;

const hex = (bytes) => Buffer.from(bytes).toString("hex");
const unhex = (text) => Uint8Array.from(Buffer.from(text, "hex"));
const FORMAT_VERSION = 2;
const LINK_FIELDS = {
  manifest: ["next"],
  epoch_root: ["manifest"],
  vote: ["proposal_id"],
  decision: ["proposal_id", "ballots"],
};

function value([, type, v]) {
  switch (type) {
    case "int": return v;
    case "str": return v;
    case "bin": return unhex(v);
    case "str[]": return v;
    case "bin[]": return v.map(unhex);
    case "int[]": return v;
    // A proposal's parameters: items typed one by one.
    case "arr": return v.map(([t, x]) => value([null, t, x]));
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
for (const c of vectors.cases) {
  const links = {};
  for (const name of LINK_FIELDS[c.kind] ?? []) {
    const [, , target] = c.fields.find(([field]) => field === name);
    if (target === "") continue;
    const named = (id) => {
      const found = Object.entries(out).find(([, derived]) => derived.id === id);
      return found ? found[0] : null;
    };
    // A decision's ballots are a list of vote ids: each is linked.
    links[name] = Array.isArray(target) ? target.map(named) : named(target);
  }
  out[c.name].links = links;
}
console.log(JSON.stringify(out, null, 1));
