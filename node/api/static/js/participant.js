// The participant's views: matches, projects, a project's page (and contributing to it), my
// contributions with what each can claim, my portfolio, my profile.

import { api, forget, nameOf, whoami } from "./api.js";
import { hashOf, sha256, upload } from "./evidence.js";
import { action, amount, describe, empty, facts, field, form, h, pill, section, short, table, when } from "./dom.js";
import { ownerPanels } from "./owner.js";

export async function matches() {
  const me = await whoami();
  if (!me.profile) return [welcome(), profileForm(null)];
  const found = await api("/v1/match", { query: { limit: 50 } });
  const items = found.items.map((m) =>
    h(
      "article",
      { class: "match" },
      h("div", { class: "match-head" },
        h("a", { href: `#/project/${m.project_id}`, class: "title" }, m.title),
        h("span", { class: "score", title: "overall fit, 0-100" }, String(Math.round(m.score * 100)))),
      h(
        "ul",
        { class: "reasons" },
        [["love", "love"], ["good_at", "good at"], ["needs", "needs"], ["paid", "paid"]].map(([part, label]) =>
          h("li", {}, h("meter", { min: 0, max: 1, value: m[part].score, "aria-label": `${label}: ${Math.round(m[part].score * 100)} of 100` }), " ", m[part].reason),
        ),
      ),
    ),
  );
  return section(
    `Matches for ${me.profile.fields.name}`,
    h("p", { class: "lead" }, `${found.considered} open project(s) considered, best first.`),
    items.length ? items : empty("No open project of others yet. Connect to a peer (Node) and wait for sync."),
  );
}

function welcome() {
  return section(
    "Welcome",
    h("p", {}, "Tell others who you are and what you are good at: matching ranks open projects for your profile."),
  );
}

export function profileForm(profile) {
  const f = profile ? profile.fields : {};
  const name = h("input", { name: "name", required: true, value: f.name || "", autocomplete: "name" });
  const skills = h("input", { name: "skills", value: (f.skills || []).join(", ") });
  const interests = h("input", { name: "interests", value: (f.interests || []).join(", ") });
  const about = h("textarea", { name: "about", rows: 3 }, f.about || "");
  // Tags are lowercase words joined by "-": "Open source" becomes "open-source".
  const list = (s) => s.value.split(",").map((x) => x.trim().toLowerCase().replace(/\s+/g, "-")).filter(Boolean);
  return section(
    "My profile",
    form("Save profile", [
      field("Display name", name),
      field("Skills", skills, "tags, comma separated: python, writing, design"),
      field("Interests", interests, "tags, comma separated: climate, open source"),
      field("About", about),
    ], async () => {
      await api("/v1/profile", {
        method: "POST",
        body: { name: name.value, skills: list(skills), interests: list(interests), about: about.value },
      });
      forget();
      return "Saved: matching now uses it.";
    }, { name: "profile" }),
  );
}

export async function profile() {
  const me = await whoami();
  return [
    profileForm(me.profile),
    section("Keys", facts([["Public key", short(me.key, 16)], ["Wallet", h("span", { class: "mono" }, me.wallet)]])),
  ];
}

export async function projects() {
  const page = await api("/v1/projects", { query: { limit: 200 } });
  const me = await whoami();
  const rows = await Promise.all(
    page.items.map(async (p) => [
      h("a", { href: `#/project/${p.project_id}` }, p.fields.title),
      p.author === me.key ? pill("mine", "ok") : await nameOf(p.author),
      (p.fields.skills || []).join(", "),
      pill(p.fields.status, p.fields.status === "open" ? "ok" : ""),
    ]),
  );
  return [
    section("Projects", rows.length ? table(["Title", "Owner", "Skills", "Status"], rows) : empty("No projects known yet.")),
    postForm(),
  ];
}

function postForm() {
  const name = h("input", { name: "name", required: true, pattern: "[a-z0-9][a-z0-9\\-]{0,63}", placeholder: "guide" });
  const title = h("input", { name: "title", required: true });
  const description = h("textarea", { name: "description", rows: 3 });
  const skills = h("input", { name: "skills" });
  const days = h("input", { type: "number", name: "days", min: 0, step: 1, value: 0, inputmode: "numeric", class: "narrow" });
  const tags = (text) => text.split(",").map((x) => x.trim().toLowerCase().replace(/\s+/g, "-")).filter(Boolean);
  return h(
    "details",
    { class: "card" },
    h("summary", {}, "Post a project"),
    form("Post project", [
      field("Short name", name, "a-z, 0-9 and -: names the project among yours, for good"),
      field("Title", title),
      field("Description", description),
      field("Skills wanted", skills, "tags, comma separated: writing, docs"),
      field("Epoch length (days)", days, "0: you close each epoch yourself by anchoring it"),
    ], async () => {
      const made = await api("/v1/projects", {
        method: "POST",
        body: { name: name.value, title: title.value, description: description.value, skills: tags(skills.value), epoch_length: Number(days.value) * 86400 },
      });
      return `Posted "${made.fields.title}": others see it as their nodes sync`;
    }, { name: "post a project" }),
  );
}

export async function project(pid) {
  const [p, me, contributions] = await Promise.all([
    api(`/v1/projects/${pid}`),
    whoami(),
    api(`/v1/projects/${pid}/contributions`, { query: { limit: 200 } }).catch(() => ({ items: [] })),
  ]);
  const mine = p.author === me.key;
  const f = p.fields;
  const head = section(
    f.title,
    h("p", { class: "description" }, f.description || ""),
    facts([
      ["Owner", mine ? "you" : await nameOf(p.author)],
      ["Skills wanted", (f.skills || []).join(", ") || "-"],
      ["Status", pill(f.status, f.status === "open" ? "ok" : "")],
      ["Epochs", f.epoch_length ? `every ${Math.round(f.epoch_length / 86400)} day(s)` : "closed by the owner"],
      ["Current epoch", p.current_epoch === undefined ? "-" : String(p.current_epoch)],
      ["Project id", short(pid, 16)],
    ]),
  );
  const list = section(
    "Contributions",
    contributions.items.length
      ? await contributionTable(contributions.items, me)
      : empty("No contributions yet: be the first."),
  );
  const parts = [head];
  if (!mine && f.status === "open") parts.push(contributeForm(pid));
  if (mine) parts.push(...(await ownerPanels(p, contributions.items)));
  parts.push(list);
  if (!mine) parts.push(...(await ownerPanels(p, contributions.items, { viewer: true })));
  return parts;
}

async function contributionTable(items, me) {
  const rows = await Promise.all(
    items.map(async (c) => [
      c.author === me.key ? "you" : await nameOf(c.author),
      c.fields.summary,
      evidenceLink(c),
      standing(c),
    ]),
  );
  return table(["By", "Summary", "Evidence", "Standing"], rows);
}

/** Returns a link to a contribution's evidence: a file named by hash comes through this node,
 * which fetches it from peers and checks it against the hash; an https link as it is. */
export function evidenceLink(c) {
  const fields = c.fields;
  const digest = hashOf(fields.evidence_uri) || (fields.evidence_uri ? null : fields.evidence_hash);
  if (digest) return h("a", { href: `/v1/contributions/${c.id}/evidence`, download: `evidence-${digest.slice(0, 12)}` }, "file " + digest.slice(0, 8));
  if (/^https:\/\//.test(fields.evidence_uri || "")) return h("a", { href: fields.evidence_uri, rel: "noopener noreferrer", target: "_blank" }, "link");
  return fields.evidence_uri ? h("span", { class: "mono" }, fields.evidence_uri) : short(fields.evidence_hash, 10);
}

export function standing(c) {
  if (!c.standing) return pill("waiting for review", "wait");
  const s = c.standing;
  const label = { open: `accepted, weight ${s.weight}, epoch ${s.epoch}`, anchored: `anchored, weight ${s.weight}, epoch ${s.epoch}`, late: "late: not counted", withdrawn: "withdrawn" }[s.status] || s.status;
  return pill(label, s.status === "anchored" || s.status === "open" ? "ok" : "warn");
}

function contributeForm(pid) {
  const summary = h("textarea", { name: "summary", rows: 2, required: true });
  const hashed = h("small", { class: "help mono wrap", role: "status" });
  const file = h("input", { type: "file", name: "evidence" });
  // Shown as soon as a file is chosen: the hash the contribution will carry.
  file.addEventListener("change", async () => {
    hashed.textContent = "";
    if (!file.files.length) return;
    try {
      const chosen = file.files[0];
      hashed.textContent = `${chosen.size} bytes, sha256 ${await sha256(await chosen.arrayBuffer())}`;
    } catch (error) {
      hashed.textContent = describe(error);
    }
  });
  const link = h("input", { type: "url", name: "link", placeholder: "https://…" });
  const effort = h("input", { type: "number", name: "effort", min: 0, step: 1, inputmode: "numeric" });
  return section(
    "Contribute",
    form("Send contribution", [
      field("What did you do?", summary),
      field("Evidence file", file, "hashed (sha256) in this browser, then kept by your node for others to fetch"),
      hashed,
      field("…or a link", link),
      field("Effort (minutes)", effort),
    ], async () => {
      const body = { project_id: pid, summary: summary.value.trim() };
      if (file.files.length) {
        const stored = await upload(file.files[0]);
        body.evidence_uri = stored.uri;
        body.evidence_hash = stored.sha256;
      } else if (link.value) {
        body.evidence_uri = link.value;
      } else {
        throw new Error("attach a file or give a link: the owner reviews the evidence");
      }
      if (effort.value) body.effort = Number(effort.value);
      const made = await api("/v1/contributions", { method: "POST", body });
      return `Sent: contribution ${made.id.slice(0, 10)}…`;
    }, { name: "contribute" }),
  );
}

export async function mine() {
  const [page, me] = await Promise.all([api("/v1/contributions", { query: { limit: 200 } }), whoami()]);
  if (!page.items.length) return section("My contributions", empty("None yet: pick a project among your matches."));
  const titles = new Map();
  const totals = new Map(); // token address -> {token, claimable, claimed}
  const cards = await Promise.all(page.items.map((c) => contributionCard(c, me, titles, totals)));
  const waiting = page.items.filter((c) => !c.standing).length;
  const sums = [...totals.values()];
  const summary = h(
    "div",
    { class: "totals" },
    total("Claimable now", sums.map((t) => amount(t.claimable.toString(), t.token)).join(" + ") || "0 ETH"),
    total("Paid so far", sums.map((t) => amount(t.claimed.toString(), t.token)).join(" + ") || "0 ETH"),
    total("Waiting for review", String(waiting)),
  );
  return section("My contributions", summary, cards);
}

function total(label, value) {
  return h("div", { class: "total" }, h("span", { class: "total-label" }, label), h("strong", {}, value));
}

async function contributionCard(c, me, titles, totals) {
  const pid = c.fields.project_id;
  if (!titles.has(pid)) titles.set(pid, api(`/v1/projects/${pid}`).then((p) => p.fields.title).catch(() => pid.slice(0, 10)));
  const out = [];
  if (c.standing && c.standing.status === "anchored") {
    try {
      const share = await api(`/v1/contributions/${c.id}/share`);
      const tokens = share.tokens.length ? share.tokens : [{ token: { symbol: "ETH", decimals: 18 }, claimable: share.claimable, claimed: share.claimed }];
      for (const t of tokens) {
        const key = t.token.address || "ETH";
        const sum = totals.get(key) || { token: t.token, claimable: 0n, claimed: 0n };
        sum.claimable += BigInt(t.claimable);
        sum.claimed += BigInt(t.claimed);
        totals.set(key, sum);
      }
      out.push(table(["Token", "Claimable", "Paid"], tokens.map((t) => [t.token.symbol || t.token.address, amount(t.claimable, t.token), amount(t.claimed, t.token)])));
      if (tokens.some((t) => BigInt(t.claimable) > 0n)) {
        out.push(action("Claim", async () => {
          const done = await api(`/v1/contributions/${c.id}/claim`, { method: "POST" });
          const paid = (done.payments || []).map((p) => amount(p.amount, p.token)).join(", ");
          return `Claimed ${paid || amount(done.amount)} to ${share.payout}`;
        }, { kind: "primary" }));
      }
      if (share.other_chain) out.push(h("p", { class: "warn" }, share.other_chain.message));
    } catch (error) {
      out.push(h("p", { class: "err" }, describe(error)));
    }
  }
  return h(
    "article",
    { class: "contribution" },
    h("div", { class: "match-head" }, h("a", { href: `#/project/${pid}`, class: "title" }, await titles.get(pid)), standing(c)),
    h("p", {}, c.fields.summary),
    facts([
      ["Evidence", evidenceLink(c)],
      ["Acceptance", c.acceptance ? `weight ${c.acceptance.fields.weight} in epoch ${c.acceptance.fields.epoch}` : "not yet"],
      ["Sent", when(c.fields.created_at)],
    ]),
    out,
  );
}

export async function portfolio() {
  const found = await api("/v1/portfolio");
  const entries = found.portfolio.entries || [];
  const rows = entries.map((e) => [
    short(e.proof.project_id.replace(/^0x/, ""), 10),
    String(e.proof.epoch),
    e.proof.leaf.weight,
    e.paid.map((p) => amount(p.claimed, { symbol: /^0x0{40}$/.test(p.token) ? "ETH" : p.token.slice(0, 8) + "…", decimals: /^0x0{40}$/.test(p.token) ? 18 : 0 })).join(", ") || "-",
  ]);
  const blob = new Blob([JSON.stringify(found.portfolio, null, 2)], { type: "application/json" });
  return [
    section(
      "My portfolio",
      h("p", { class: "lead" }, "Every contribution of yours that an anchored epoch pays, with its Merkle proof: anyone can verify it against the chain."),
      rows.length ? table(["Project", "Epoch", "Weight", "Paid"], rows) : empty("Nothing anchored yet."),
      h("p", {}, h("a", { href: URL.createObjectURL(blob), download: "portfolio.json", class: "button" }, "Download portfolio.json")),
    ),
    found.left_out.length
      ? section("Left out", table(["Contribution", "Why"], found.left_out.map((l) => [short(l.contribution_id), l.reason])))
      : null,
  ];
}
