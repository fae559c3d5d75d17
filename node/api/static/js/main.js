// The web app's entry: login from a one-time link, then a view per URL fragment, so that every
// view (a project's page too) has its own URL and survives a reload.
//
//   #/                 matches for me         #/project/<id>   a project's page
//   #/projects         every project          #/mine           my contributions, claims
//   #/portfolio        my portfolio           #/review         my review queue (owner)
//   #/profile          my profile             #/node           node, chain, peers, sync

import { forget, login, logout } from "./api.js";
import { announce, describe, h, section } from "./dom.js";
import { node } from "./network.js";
import { review } from "./owner.js";
import { matches, mine, portfolio, profile, project, projects } from "./participant.js";

const VIEWS = [
  [/^\/?$/, matches],
  [/^\/projects$/, projects],
  [/^\/project\/([0-9a-f]{64})$/, project],
  [/^\/mine$/, mine],
  [/^\/portfolio$/, portfolio],
  [/^\/review$/, review],
  [/^\/profile$/, profile],
  [/^\/node$/, node],
];

const main = document.getElementById("view");

const say = announce;

async function start() {
  // A new place clears the banner; a view drawn again after an action keeps what it says.
  window.addEventListener("hashchange", async () => {
    say("");
    await takeLogin();
    render();
  });
  window.addEventListener("workwork:refresh", render);
  window.addEventListener("workwork:logged-out", loggedOut);
  document.getElementById("logout").addEventListener("click", async () => {
    await logout().catch(() => null);
    forget();
    loggedOut();
  });
  // The skip link moves focus to the view without touching the URL, which the router owns.
  document.querySelector(".skip").addEventListener("click", (event) => {
    event.preventDefault();
    main.tabIndex = -1;
    main.focus();
  });
  await takeLogin();
  await render();
  first = false;
}

// A one-time login link: trade its code for a session cookie, then drop it from the URL and
// from history, so that a reload or a shared screen shows no code. A link pasted into a tab
// that is already open arrives as a change of the fragment, not a new page: both come here.
async function takeLogin() {
  const code = new URLSearchParams(location.hash.slice(1)).get("login");
  if (!code) return;
  history.replaceState(null, "", location.pathname + "#/");
  try {
    await login(code);
    forget();
  } catch (error) {
    say(describe(error), "err");
  }
}

// The first view leaves focus where a page load leaves it (so Tab starts at the skip link);
// later ones move it to their heading, so that keyboard and screen reader users land there.
let first = true;

let rendering = 0;

async function render() {
  const path = location.hash.replace(/^#/, "") || "/";
  if (!path.startsWith("/")) return; // an anchor within the page, not a view
  const found = VIEWS.find(([pattern]) => pattern.test(path));
  for (const link of document.querySelectorAll("nav a")) {
    const here = link.getAttribute("href") === "#" + path || (path === "/" && link.getAttribute("href") === "#/");
    if (here) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const turn = ++rendering;
  main.setAttribute("aria-busy", "true");
  let content;
  try {
    if (!found) throw new Error(`no page at ${path}`);
    const args = path.match(found[0]).slice(1);
    content = await found[1](...args);
  } catch (error) {
    if (error.status === 401) return;
    content = section("Something went wrong", h("p", { class: "err" }, describe(error)));
  }
  if (turn !== rendering) return; // a newer view was asked for meanwhile
  main.replaceChildren(...[content].flat(2).filter(Boolean));
  main.setAttribute("aria-busy", "false");
  document.body.dataset.view = found ? found[1].name : "none";
  const heading = main.querySelector("h2");
  if (heading && !first && document.activeElement === document.body) {
    heading.tabIndex = -1;
    heading.focus({ preventScroll: true });
  }
}

function loggedOut() {
  main.replaceChildren(
    section(
      "Log in",
      h("p", {}, "This browser has no session with the node (or it expired). On the machine that runs the node:"),
      h("pre", {}, "workwork dashboard --open"),
      h("p", {}, "and open the link it prints. The link works once, for 10 minutes; the session it starts lasts 30 days, across restarts of the node."),
    ),
  );
  main.setAttribute("aria-busy", "false");
  document.body.dataset.view = "login";
}

start();
