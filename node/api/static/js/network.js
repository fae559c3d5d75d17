// For anyone: the node, its chain, its peers and how far syncing has come.

import { api } from "./api.js";
import { amount, describe, empty, facts, h, pill, section, short, table, when } from "./dom.js";

export async function node() {
  const [status, peers] = await Promise.all([api("/v1/status"), api("/v1/peers")]);
  let chain;
  try {
    chain = await api("/v1/chain");
  } catch (error) {
    chain = { error: describe(error) };
  }
  const syncing = status.syncing || [];
  const sync = syncing.length
    ? syncing.map((r) =>
        h(
          "div",
          { class: "sync" },
          h("span", { class: "mono" }, r.peer.slice(-10)),
          h("progress", { max: Math.max(r.needed, r.fetched, 1), value: r.fetched, "aria-label": `sync with ${r.peer}` }),
          ` ${r.fetched} / ${Math.max(r.needed, r.fetched)} records`,
        ),
      )
    : h("p", { class: "muted" }, "In step with its peers: nothing to fetch.");
  return [
    section(
      "Node",
      facts([
        ["Peer id", short(status.peer_id, 16)],
        ["Role", status.role],
        ["Version", status.version],
        ["Records", `${status.records} stored, ${status.orphans} waiting for their parents`],
        ["Listening on", h("ul", { class: "plain" }, status.addrs.map((a) => h("li", { class: "mono wrap" }, a)))],
      ]),
    ),
    section("Sync", sync),
    section(
      "Chain",
      chain.error
        ? h("p", { class: "err" }, chain.error)
        : facts([
            ["Chain", `${chain.chain_id} (${chain.backend})`],
            ["Contract", h("span", { class: "mono wrap" }, chain.contract)],
            ["Wallet", h("span", { class: "mono wrap" }, chain.wallet)],
            ["Balance", amount(chain.balance)],
            ["Block", String(chain.block)],
          ]),
    ),
    section(
      `Peers (${peers.connected.length} connected)`,
      peers.known.length
        ? table(
            ["Peer", "State", "Last seen"],
            peers.known.map((p) => [
              short(p.peer_id, 14),
              p.connected ? pill("connected", "ok") : p.failures ? pill(`${p.failures} failure(s)`, "warn") : pill("known"),
              when(p.last_seen),
            ]),
          )
        : empty("No peers known: start with --bootstrap, or `workwork connect`."),
    ),
  ];
}
