// A project's settlement and decisions: the owner's review queue (accept with a weight), its
// epochs (anchor, fund, allocate from the pool), and proposals with their votes. Funding and
// voting are open to others too, so a participant sees these panels without the owner's buttons.

import { api, nameOf, whoami } from "./api.js";
import { evidenceLink } from "./participant.js";
import { action, amount, describe, empty, field, form, h, parseAmount, pill, section, short, table, when } from "./dom.js";

/** Returns the panels of a project's page below its head. */
export async function ownerPanels(project, contributions, { viewer = false } = {}) {
  const pid = project.project_id;
  const panels = [];
  if (!viewer) panels.push(await reviewQueue([{ project, contributions }]));
  panels.push(await epochs(pid, !viewer));
  panels.push(await proposals(pid, !viewer));
  return panels;
}

async function reviewQueue(projects) {
  const waiting = [];
  for (const { project, contributions } of projects) {
    for (const c of contributions) if (!c.standing) waiting.push({ project, c });
  }
  if (!waiting.length) return section("Review queue", empty("Nothing waits for review."));
  const cards = await Promise.all(
    waiting.map(async ({ project, c }) => {
      const weight = h("input", { type: "number", min: 1, step: 1, value: 10, inputmode: "numeric", class: "narrow" });
      return h(
        "article",
        { class: "contribution" },
        h("div", { class: "match-head" }, h("strong", {}, await nameOf(c.author)), h("a", { href: `#/project/${project.project_id}` }, project.fields.title)),
        h("p", {}, c.fields.summary),
        h("p", { class: "muted" }, "Evidence: ", evidenceLink(c), c.fields.effort ? ` · ${c.fields.effort} min claimed` : "", ` · sent ${when(c.fields.created_at)}`),
        form("Accept", [field("Weight", weight)], async () => {
          const done = await api("/v1/acceptances", { method: "POST", body: { contribution_id: c.id, weight: weight.value } });
          return `Accepted with weight ${done.fields.weight} into epoch ${done.fields.epoch}`;
        }, { name: `accept ${c.fields.summary}` }),
      );
    }),
  );
  return section(`Review queue (${waiting.length})`, cards);
}

/** The review queue of every project of mine (#/review). */
export async function review() {
  const me = await whoami();
  const page = await api("/v1/projects", { query: { limit: 200 } });
  const own = page.items.filter((p) => p.author === me.key);
  if (!own.length) return section("Review queue", empty("You own no project. Post one with `workwork project post`."));
  const withContributions = await Promise.all(
    own.map(async (project) => ({
      project,
      contributions: (await api(`/v1/projects/${project.project_id}/contributions`, { query: { limit: 200 } })).items,
    })),
  );
  return reviewQueue(withContributions);
}

async function tokenOf(pid, name) {
  if (!name || /^eth(er)?$/i.test(name)) return { address: null, symbol: "ETH", decimals: 18 };
  const found = await api(`/v1/projects/${pid}/tokens`, { query: { token: name } });
  return found.items[0];
}

function fundForm(pid, epoch, label, path) {
  const value = h("input", { name: "amount", inputmode: "decimal", placeholder: "0.5", required: true, class: "narrow" });
  const token = h("input", { name: "token", value: "ETH", class: "narrow", title: "ETH, a token's symbol, or its 0x address" });
  return form(label, [field("Amount", value), field("Token", token)], async () => {
    const t = await tokenOf(pid, token.value.trim());
    const body = { amount: parseAmount(value.value, t.decimals) };
    if (t.address) body.token = t.address;
    if (epoch !== null) body.epoch = epoch;
    const done = await api(path, { method: "POST", body });
    return `${label}: ${amount(done.amount, done.token || t)} in tx ${(done.tx_hash || "").slice(0, 10)}…`;
  }, { kind: "", name: label, inline: true });
}

async function epochs(pid, owner) {
  const [found_pool] = await Promise.all([api(`/v1/projects/${pid}/pool`).catch(() => null)]);
  const allocatable = found_pool && found_pool.tokens.some((t) => BigInt(t.unallocated) > 0n);
  let found;
  try {
    found = await api(`/v1/projects/${pid}/epochs`);
  } catch (error) {
    return section("Epochs", h("p", { class: "err" }, describe(error)));
  }
  const cards = found.items.map((e) => {
    const tokens = e.tokens.length ? e.tokens : [{ token: { symbol: "ETH", decimals: 18 }, funded: e.funded, paid: e.paid }];
    const state = e.anchored ? pill("anchored", "ok") : e.pending ? pill("anchoring…", "wait") : pill("open", "wait");
    const parts = [
      h("div", { class: "match-head" }, h("strong", {}, `Epoch ${e.epoch}`), state),
      h("p", { class: "muted" }, `${e.leaves} accepted contribution(s), total weight ${e.total_weight}`, e.anchored ? [" · root ", short(e.root, 12)] : ""),
      table(["Token", "Funded", "Paid out"], tokens.map((t) => [t.token.symbol || t.token.address, amount(t.funded, t.token), amount(t.paid, t.token)])),
    ];
    if (e.other_chain) parts.push(h("p", { class: "warn" }, e.other_chain.message));
    if (owner && !e.anchored && !e.pending && e.leaves > 0) {
      parts.push(action(`Anchor epoch ${e.epoch}`, async () => {
        const done = await api(`/v1/projects/${pid}/epochs/${e.epoch}/anchor`, { method: "POST" });
            return `Anchored: root ${done.root.slice(0, 10)}… in tx ${done.tx_hash.slice(0, 10)}…`;
      }, { kind: "primary" }));
    }
    if (e.anchored && !e.other_chain) {
      parts.push(fundForm(pid, null, `Fund epoch ${e.epoch}`, `/v1/projects/${pid}/epochs/${e.epoch}/fund`));
      if (owner && allocatable) parts.push(fundForm(pid, e.epoch, `Allocate from pool to epoch ${e.epoch}`, `/v1/projects/${pid}/pool/allocate`));
    }
    return h("article", { class: "epoch" }, parts);
  });
  return section("Epochs", cards.length ? cards : empty("No accepted work yet: epochs appear once something is accepted."), pool(pid, found_pool));
}

function pool(pid, found) {
  if (!found) return null;
  return h(
    "div",
    { class: "pool" },
    h("h3", {}, "Pool"),
    found.tokens.length
      ? table(["Token", "Funded", "Not allocated", "Mine"], found.tokens.map((t) => [t.token.symbol || t.token.address, amount(t.funded, t.token), amount(t.unallocated, t.token), amount(t.my_stake, t.token)]))
      : h("p", { class: "muted" }, "Nothing in the pool yet: money paid in here waits for the owner to allocate it to anchored epochs."),
    fundForm(pid, null, "Fund the pool", `/v1/projects/${pid}/pool/fund`),
  );
}

async function proposals(pid, owner) {
  let found;
  try {
    found = await api(`/v1/projects/${pid}/proposals`);
  } catch (error) {
    return section("Proposals", h("p", { class: "err" }, describe(error)));
  }
  const cards = found.items.map((p) =>
    h(
      "article",
      { class: "proposal" },
      h("div", { class: "match-head" }, h("strong", {}, p.title), pill(p.open ? `open until ${when(p.closes_at)}` : p.outcome, p.passed ? "ok" : "")),
      h("p", { class: "muted" }, `${p.action} · yes ${p.yes} · no ${p.no} · abstain ${p.abstain} of ${p.total_power} · quorum ${p.quorum_met ? "met" : "not met"} · ${p.outcome}`),
      p.open
        ? h("div", { class: "row" }, ["yes", "no", "abstain"].map((choice) =>
            action(`Vote ${choice}`, async () => {
              await api("/v1/votes", { method: "POST", body: { proposal_id: p.proposal.id, choice } });
                  return `Voted ${choice}`;
            })))
        : null,
    ),
  );
  const title = h("input", { name: "title", required: true });
  const kind = h("select", { name: "action" }, h("option", { value: "signal" }, "signal (a question)"));
  const propose = form("Propose", [field("Title", title), field("Kind", kind)], async () => {
    await api("/v1/proposals", { method: "POST", body: { project_id: pid, action: kind.value, title: title.value } });
    return "Proposed";
  }, { kind: "", name: "propose" });
  return section(
    "Proposals and votes",
    cards.length ? cards : empty("No proposals yet. Votes weigh by accepted, anchored work."),
    owner || cards.length ? propose : propose,
  );
}
