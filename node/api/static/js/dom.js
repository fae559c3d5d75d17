// Building the page: every value goes in as text (textContent, attributes), never as HTML.
// Titles, summaries and names come from other people's signed records.

/** Returns a new element: `h("a", {href: "#/x", class: "btn"}, "text", child, ...)`. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.append(child);
    else el.append(document.createTextNode(String(child)));
  }
}

/** Returns a section with a heading. */
export function section(title, ...children) {
  return h("section", { class: "card" }, h("h2", {}, title), ...children);
}

/** Returns a definition list of [label, value] pairs (values may be nodes). */
export function facts(pairs) {
  return h(
    "dl",
    { class: "facts" },
    pairs.filter(([, v]) => v !== undefined).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]),
  );
}

/** Returns a table that scrolls sideways on a narrow screen. */
export function table(headers, rows) {
  return h(
    "div",
    { class: "scroll" },
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((c) => h("td", {}, c))))),
    ),
  );
}

/** Returns a short form of a hex id, whole in its title (and for screen readers). */
export function short(id, size = 10) {
  if (!id) return h("span", {}, "-");
  return h("span", { class: "mono", title: id }, id.length > size ? id.slice(0, size) + "…" : id);
}

/** Returns an amount of a token's smallest unit, shown in the token's decimals. */
export function amount(raw, token = { symbol: "ETH", decimals: 18 }) {
  const value = BigInt(raw || "0");
  const decimals = BigInt(token.decimals ?? 18);
  const unit = 10n ** decimals;
  const whole = value / unit;
  let frac = (value % unit).toString().padStart(Number(decimals), "0").replace(/0+$/, "");
  if (frac.length > 6) frac = frac.slice(0, 6) + "…";
  const symbol = token.symbol || (token.address ? token.address.slice(0, 8) + "…" : "");
  return `${whole}${frac ? "." + frac : ""} ${symbol}`.trim();
}

/** Returns the smallest units of a decimal amount typed by a person ("0.5" with 18 decimals).
 * Throws an Error naming the problem. */
export function parseAmount(text, decimals = 18) {
  const clean = String(text).trim();
  if (!/^\d+(\.\d+)?$/.test(clean)) throw new Error(`"${clean}" is not an amount: write it like 0.5`);
  const [whole, frac = ""] = clean.split(".");
  if (frac.length > decimals) throw new Error(`at most ${decimals} decimals`);
  const value = BigInt(whole) * 10n ** BigInt(decimals) + BigInt(frac.padEnd(decimals, "0") || "0");
  if (value === 0n) throw new Error("the amount must be more than 0");
  return value.toString();
}

/** Returns a time (seconds since 1970) as a short local date and time. */
export function when(seconds) {
  if (!seconds) return "-";
  return new Date(seconds * 1000).toLocaleString(undefined, {
    dateStyle: "medium",
    timeStyle: "short",
  });
}

/** Returns a labelled input: the label's `for` names the input, so both are one control. */
export function field(label, input, help) {
  const id = input.id || "f-" + Math.random().toString(36).slice(2, 9);
  input.id = id;
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    input,
    help ? h("small", { class: "help" }, help) : null,
  );
}

/** Returns a status pill. */
export function pill(text, kind = "") {
  return h("span", { class: `pill ${kind}`.trim() }, text);
}

/** Says something in the banner above the view, which outlives the view's next rendering. */
export function announce(text, kind = "ok") {
  const notice = document.getElementById("notice");
  notice.textContent = text;
  notice.className = kind;
  notice.hidden = !text;
}

/** Renders the current view again (after an action changed what it shows). */
export function refresh() {
  window.dispatchEvent(new Event("workwork:refresh"));
}

// What an action's button or form does with its outcome: an error stays beside the control;
// success either shows there too or, with `reload`, goes to the banner and the view is drawn
// again with what changed.
async function perform(run, out, control, reload) {
  control.disabled = true;
  out.textContent = "working…";
  out.className = "result";
  try {
    const said = (await run()) || "done";
    if (reload) {
      out.textContent = "";
      announce(said);
      refresh();
    } else {
      out.textContent = said;
      out.className = "result ok";
    }
  } catch (error) {
    out.textContent = describe(error);
    out.className = "result err";
  } finally {
    control.disabled = false;
  }
}

/** Returns a button that runs `run` on a click, disabled while it runs. */
export function action(label, run, { kind = "", reload = true } = {}) {
  const out = h("span", { class: "result", role: "status" });
  const button = h("button", { type: "button", class: kind }, label);
  button.addEventListener("click", () => perform(run, out, button, reload));
  return h("span", { class: "action" }, button, out);
}

/** Returns a form whose submit runs `run(form)`; outcomes as for `action`. */
export function form(label, fields, run, { kind = "primary", name = "", reload = true, inline = false } = {}) {
  const out = h("p", { class: "result", role: "status" });
  const submit = h("button", { type: "submit", class: kind }, label);
  const el = h(
    "form",
    { class: inline ? "form inline" : "form", "aria-label": name || label },
    fields,
    h("div", { class: "submit" }, submit),
    out,
  );
  el.addEventListener("submit", (event) => {
    event.preventDefault();
    perform(() => run(el), out, submit, reload);
  });
  return el;
}

/** Returns what an error says to a person: its message, and the API's hint if any. */
export function describe(error) {
  if (error && error.hint) return `${error.message} (${error.hint})`;
  return error && error.message ? error.message : String(error);
}

/** Returns a paragraph that says there is nothing (yet). */
export function empty(text) {
  return h("p", { class: "empty" }, text);
}
