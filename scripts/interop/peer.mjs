// A js-libp2p peer for interop tests: it dials one of our nodes, subscribes to a topic, publishes
// the gossip messages it was given, and reports what happens as JSON lines on stdout.
//
// Run from the repository root (the test tests/node/test_interop.py does):
//
//   node scripts/interop/peer.mjs '{"dial": "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooW...",
//     "topic": "/workwork/1/meta", "publish": ["<hex>", ...], "seconds": 60}'
//
// - dial: our node's multiaddr, with its /p2p/ peer id.
// - topic: the GossipSub topic to subscribe and publish to.
// - publish: messages (hex) to publish in order, once the dialed node has subscribed to the
//   topic. They are sent as they are, so the caller gives bytes our own encoder produced.
// - seconds: the longest the peer runs. It also stops when its stdin closes, which is how a test
//   says it has seen enough: an orderly stop, rather than a kill, flushes what is still queued.
//   (By hand, keep stdin open: from a terminal, or `sleep 60 | node ...`.)
// - msgId (optional): "js", js-libp2p's default message id (the author's public key in protobuf
//   form, then the sequence number), or "go": the author's peer id bytes, then the sequence
//   number, which is go-libp2p's default and py-libp2p's.
// - mesh (optional, default true): false keeps this peer's mesh empty (D = 0), and what it
//   publishes goes to no one directly, so that its messages reach the dialed node by gossip
//   only (IHAVE, then IWANT): the path on which both sides must compute the same message ids.
//   Each message is then published once.
//
// Events, one JSON object a line: ready, connected, subscribed (the dialed node's subscription
// reached us), graft and prune (our mesh), published, message, score (the dialed node's score
// in our eyes, when it changes), error, and exit, the last line.

// js-libp2p 2.x and its dependencies call Promise.withResolvers, which Node 22 has and Node 20
// does not. The polyfill has to be installed before any of them runs, so the libp2p modules are
// loaded below with dynamic imports, after it: static imports would be evaluated first.
if (typeof Promise.withResolvers !== "function") {
  Promise.withResolvers = function withResolvers() {
    let resolve;
    let reject;
    const promise = new this((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}

const { createLibp2p } = await import("libp2p");
const { tcp } = await import("@libp2p/tcp");
const { noise } = await import("@chainsafe/libp2p-noise");
const { yamux } = await import("@chainsafe/libp2p-yamux");
const { identify } = await import("@libp2p/identify");
const { gossipsub } = await import("@chainsafe/libp2p-gossipsub");
const { multiaddr } = await import("@multiformats/multiaddr");

const hex = (bytes) => Buffer.from(bytes).toString("hex");
const emit = (event, fields = {}) =>
  process.stdout.write(JSON.stringify({ event, ...fields }) + "\n");
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// go-libp2p's DefaultMsgIdFn, which py-libp2p also uses: the author's peer id bytes (for an
// Ed25519 key, an identity multihash of the protobuf key), then the 8-byte sequence number.
// js-libp2p's default leaves the multihash's two-byte prefix out, so the same message has
// different ids in js and in go or py unless one side is configured like the other.
function goMsgId(msg) {
  const from = msg.from.toMultihash().bytes;
  const seqno = Buffer.from(msg.sequenceNumber.toString(16).padStart(16, "0"), "hex");
  return Uint8Array.from(Buffer.concat([from, seqno]));
}

const args = JSON.parse(process.argv[2] ?? "{}");
const target = multiaddr(args.dial);
const targetId = target.getPeerId();
const topic = args.topic;
const outgoing = (args.publish ?? []).map((text) => Uint8Array.from(Buffer.from(text, "hex")));
const seconds = args.seconds ?? 60;
const gossipOnly = args.mesh === false;
// How often, and how many times, a message that reached nobody is published again.
const RETRY_MS = 200;
const RETRIES = 50;

const node = await createLibp2p({
  addresses: { listen: ["/ip4/127.0.0.1/tcp/0"] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: {
    identify: identify(),
    pubsub: gossipsub({
      // StrictSign: every message we publish is signed and every message we accept must be.
      globalSignaturePolicy: "StrictSign",
      // Our own messages go to every peer subscribed to the topic, mesh or not, so a publish
      // does not have to wait for a heartbeat to graft the dialed node.
      floodPublish: !gossipOnly,
      // A publish that reaches nobody yet returns an empty recipient list instead of throwing;
      // the loop below publishes again until the dialed node is among the recipients.
      allowPublishToZeroTopicPeers: true,
      emitSelf: false,
      ...(args.msgId === "go" ? { msgIdFn: goMsgId } : {}),
      ...(gossipOnly ? { D: 0, Dlo: 0, Dhi: 0, Dscore: 0, Dout: 0 } : {}),
    }),
  },
});
const pubsub = node.services.pubsub;
if (gossipOnly) {
  // A published message goes to no one directly: it only enters the message cache, and from
  // there our heartbeat advertises it (IHAVE) to the peers outside our mesh, which is all of
  // them. This reaches into gossipsub's internals, for this test mode only.
  pubsub.selectPeersToPublish = () => ({ tosend: new Set(), tosendCount: {} });
}

// The exit is bounded whatever happens: `seconds`, or stdin closing, or a signal. The exit code
// is 1 once anything went wrong (process.exitCode), whichever of these came first.
let stopping = false;
async function stop(reason) {
  if (stopping) return;
  stopping = true;
  const force = setTimeout(() => {
    emit("exit", { reason: `${reason} (forced)` });
    process.exit(1);
  }, 5000);
  try {
    await node.stop();
  } catch (error) {
    emit("error", { error: String(error) });
    process.exitCode = 1;
  }
  clearTimeout(force);
  emit("exit", { reason });
  process.exit();
}
setTimeout(() => stop("time limit"), seconds * 1000).unref();
process.stdin.on("end", () => stop("stdin closed"));
process.stdin.resume();
process.on("SIGTERM", () => stop("SIGTERM"));
process.on("SIGINT", () => stop("SIGINT"));

pubsub.addEventListener("gossipsub:message", ({ detail }) => {
  const { msg, msgId, propagationSource } = detail;
  emit("message", {
    from: msg.type === "signed" ? msg.from.toString() : null,
    via: propagationSource.toString(),
    topic: msg.topic,
    seqno: msg.type === "signed" ? msg.sequenceNumber.toString(16).padStart(16, "0") : null,
    // gossipsub's message id, as js-libp2p computes it (base64 of the id bytes).
    msgId,
    data: hex(msg.data),
  });
});
pubsub.addEventListener("subscription-change", ({ detail }) => {
  for (const { topic: name, subscribe } of detail.subscriptions) {
    if (name === topic && detail.peerId.equals(targetId)) {
      emit(subscribe ? "subscribed" : "unsubscribed", { peer: detail.peerId.toString(), topic });
    }
  }
});
pubsub.addEventListener("gossipsub:graft", ({ detail }) => {
  const { peerId, topic: name, direction } = detail;
  emit("graft", { peer: peerId.toString(), topic: name, direction });
});
let lastScore = 0;
pubsub.addEventListener("gossipsub:heartbeat", () => {
  const score = pubsub.getScore(targetId.toString());
  if (score !== lastScore) {
    lastScore = score;
    const stats = pubsub.dumpPeerScoreStats()[targetId.toString()];
    emit("score", { peer: targetId.toString(), score, behaviourPenalty: stats?.behaviourPenalty });
  }
});
pubsub.addEventListener("gossipsub:prune", ({ detail }) =>
  emit("prune", { peer: detail.peerId.toString(), topic: detail.topic }),
);

// The GossipSub streams to the dialed node, as "direction protocol": which version each side
// chose. Both exist once a publish has reached it: ours carried the message, and its own
// carried the subscription we waited for.
const meshsub = () =>
  node
    .getConnections(targetId)
    .flatMap((connection) => connection.streams)
    .filter((stream) => stream.protocol?.startsWith("/meshsub/"))
    .map((stream) => `${stream.direction} ${stream.protocol}`)
    .sort();

try {
  pubsub.subscribe(topic);
  emit("ready", { peerId: node.peerId.toString(), addrs: node.getMultiaddrs().map(String) });
  const connection = await node.dial(target, { signal: AbortSignal.timeout(10_000) });
  emit("connected", { peer: connection.remotePeer.toString(), protocol: connection.encryption });

  // Publish only once the dialed node has told us it is subscribed; until then a flood publish
  // has no one to go to.
  const subscribed = () => pubsub.getSubscribers(topic).some((peer) => peer.equals(targetId));
  for (let waited = 0; !subscribed(); waited += 50) {
    if (waited > 10_000) throw new Error(`${targetId} did not subscribe to ${topic} in 10 s`);
    await sleep(50);
  }

  for (const [index, data] of outgoing.entries()) {
    let recipients = [];
    for (let attempt = 1; attempt <= RETRIES; attempt++) {
      // Every attempt gets a fresh sequence number and so a fresh message id: a retry is never
      // refused as a duplicate of the attempt that reached nobody.
      const result = await pubsub.publish(topic, data);
      recipients = result.recipients.map(String);
      if (gossipOnly || recipients.includes(targetId.toString())) {
        emit("published", { index, attempt, recipients, bytes: data.length, streams: meshsub() });
        break;
      }
      await sleep(RETRY_MS);
    }
    if (!gossipOnly && !recipients.includes(targetId.toString())) {
      throw new Error(`message ${index} reached none of ${targetId} after ${RETRIES} attempts`);
    }
  }
} catch (error) {
  // A dial or publish cut short by our own stop is not a failure.
  if (!stopping) {
    emit("error", { error: String(error?.stack ?? error) });
    process.exitCode = 1;
    await stop("error");
  }
}
