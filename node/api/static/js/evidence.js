// Evidence files: hashed here with SubtleCrypto (sha256), then given to the node, which keeps
// them by that hash (POST /v1/evidence) and serves them to others. The contribution names the
// file by its URI (workwork:sha256:<hex>) and carries the hash, so anyone can check it.

import { answer } from "./api.js";

/** Returns the lowercase hex sha256 of an ArrayBuffer. */
export async function sha256(buffer) {
  if (!crypto.subtle) {
    throw new Error("this browser offers no SubtleCrypto here: open the app at 127.0.0.1 or localhost");
  }
  const digest = await crypto.subtle.digest("SHA-256", buffer);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Hashes a File, uploads it and checks that the node stored the same bytes; returns
 * `{uri, sha256, size}`. */
export async function upload(file) {
  const buffer = await file.arrayBuffer();
  const digest = await sha256(buffer);
  const stored = await answer(
    await fetch("/v1/evidence", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/octet-stream" },
      body: buffer,
    }),
  );
  if (stored.sha256 !== digest) {
    throw new Error(`the node stored a file with another hash (${stored.sha256}) than this one (${digest})`);
  }
  return stored;
}

/** Returns the hash an evidence URI names, or null. */
export function hashOf(uri) {
  const m = /^workwork:sha256:([0-9a-f]{64})$/.exec(uri || "");
  return m ? m[1] : null;
}
