"""The web app end to end, in a real browser: two real nodes on one anvil chain, a contributor
and an owner each in their own Chromium context, through the whole cycle of work and pay.

Alice (contributor) logs in with the one-time link, sets her profile, finds the project among
her matches, opens its page (which survives a reload), contributes with a file hashed in the
browser and uploaded to her node; Olivia (owner) accepts it from her review queue, anchors the
epoch and funds it; Alice claims and sees what she was paid. Screenshots go to
artifacts/web/ (gitignored), for a person to look at.

Playwright drives Debian's Chromium (`executable_path`, no `playwright install`); the test skips
where it is absent (`scripts/setup` installs it with apt when root on Debian).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from web3 import Web3

from node.chain import anvil
from node.chain.client import ChainClient
from node.client import Client
from tests.support.cli import daemon, ok, wait_until

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "web"
ETHER = 10**18
STEP = 20_000  # ms: the most any step in the browser may take


@pytest.fixture
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed (/usr/bin/chromium): run scripts/setup as root")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


def _page(browser: Any, errors: list[str], width: int = 1100) -> Any:
    """Returns a page in a fresh context (its own cookies), collecting what goes wrong."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(STEP)
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on("console", lambda m: _console(m, errors))
    return page


def _console(message: Any, errors: list[str]) -> None:
    # A 4xx is how the API says "no profile yet", "not here" or "log in": the app shows it;
    # Chromium logs every such answer as a failed resource too. A 5xx (a bug) is not let pass.
    if message.type == "error" and not re.search(r"status of 4\d\d", message.text):
        errors.append(f"console {message.type}: {message.text}")


def _login_link(home: Path) -> str:
    with Client.connect(home) as client:
        code = client.request("POST", "/v1/session/code")
        return f"{client.base_url}/{code['fragment']}"


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_a_contributor_and_an_owner_go_through_work_and_pay_in_the_browser(
    tmp_path: Path, anvil_url: str, browser: Any
) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=STEP)
    olivia, alice = tmp_path / "olivia", tmp_path / "alice"
    # The two inits and the contract's deployment side by side: each is mostly waiting.
    with ThreadPoolExecutor(3) as pool:
        inits = [pool.submit(ok, home, "init") for home in (olivia, alice)]
        contract = pool.submit(_deploy, anvil_url).result()
        for made in inits:
            anvil.rpc(anvil_url, "anvil_setBalance", [made.result()["wallet"], hex(100 * ETHER)])
    chain = ("--chain", anvil_url, "--contract", contract, "--confirmations", "0")
    errors: list[str] = []

    with daemon(olivia, *chain):
        with Client.connect(olivia) as owner_api:
            boot = owner_api.status()["addrs"][0]
            owner_api.request("POST", "/v1/profile", body={"name": "Olivia", "skills": ["ops"]})
            others = [
                owner_api.request("POST", "/v1/projects", body=body)["project_id"]
                for body in (
                    {
                        "name": "examples",
                        "title": "Python examples for the agent API",
                        "description": "Small scripts that drive a node through its API.",
                        "skills": ["python", "docs"],
                    },
                    {
                        "name": "translate",
                        "title": "Translate the guide into Spanish",
                        "description": "Keep the Spanish guide in step with the English one.",
                        "skills": ["translation", "spanish"],
                    },
                )
            ]
            # Olivia posts her main project in her browser.
            owner = _page(browser, errors)
            owner.goto(_login_link(olivia))
            owner.get_by_role("link", name="Projects").click()
            owner.get_by_text("Post a project").click()
            post = owner.get_by_role("form", name="post a project")
            post.get_by_label("Short name").fill("guide")
            post.get_by_label("Title").fill("Write the WorkWork user guide")
            post.get_by_label("Description").fill(
                "A guide for participants: installing, matching, contributing and claiming. "
                "Markdown, with screenshots."
            )
            post.get_by_label("Skills wanted").fill("Writing, docs")
            post.get_by_role("button", name="Post project").click()
            expect(owner.get_by_text('Posted "Write the WorkWork user guide"')).to_be_visible()
            expect(owner.get_by_role("link", name="Write the WorkWork user guide")).to_be_visible()
            pid = next(
                p["project_id"]
                for p in owner_api.request("GET", "/v1/projects")["items"]
                if p["fields"]["name"] == "guide"
            )
            posted = owner_api.request("GET", f"/v1/projects/{pid}")["fields"]
            assert posted["skills"] == ["docs", "writing"] or posted["skills"] == [
                "writing",
                "docs",
            ]
            assert posted["epoch_length"] == 0
        with daemon(alice, *chain, "--bootstrap", boot), Client.connect(alice) as alice_api:
            wait_until(lambda: all(_knows(alice_api, p) for p in [pid, *others]), timeout=30)

            # Alice: the one-time link logs her in; the code leaves the URL at once.
            page = _page(browser, errors)
            link = _login_link(alice)
            # Without a session the app says how to get one.
            page.goto(link.split("#")[0])
            expect(page.get_by_role("heading", name="Log in")).to_be_visible()
            page.goto(link)
            expect(page).to_have_url(re.compile(r"#/$"))
            # The link worked once: in another browser it no longer does.
            thief = _page(browser, errors)
            thief.goto(link)
            expect(thief.get_by_text("this login link is unknown, used or expired")).to_be_visible()
            expect(thief.get_by_role("heading", name="Log in")).to_be_visible()
            # No profile yet: the app asks for one, then ranks projects for it.
            page.get_by_label("Display name").fill("Alice")
            page.get_by_label("Skills").fill("writing, python")
            page.get_by_label("Interests").fill("docs, open source")
            page.get_by_role("button", name="Save profile").click()
            expect(page.get_by_text("Saved: matching now uses it.")).to_be_visible()
            page.reload()
            match = page.get_by_role("link", name="Write the WorkWork user guide")
            expect(match).to_be_visible()
            guide = page.locator("article.match", has_text="Write the WorkWork user guide")
            expect(guide.get_by_text(re.compile(r"good at: .*writing"))).to_be_visible()
            expect(page.locator("article.match")).to_have_count(3)
            _shot(page, "1-matches")

            # The project's page has its own URL, which a reload keeps.
            match.click()
            expect(page).to_have_url(re.compile(rf"#/project/{pid}$"))
            page.reload()
            expect(
                page.get_by_role("heading", name="Write the WorkWork user guide")
            ).to_be_visible()

            # Contribute with a file: hashed in the browser, kept by Alice's node.
            work = tmp_path / "chapter-1.md"
            work.write_bytes(b"# Chapter 1\n\nInstalling a WorkWork node.\n" * 50)
            digest = hashlib.sha256(work.read_bytes()).hexdigest()
            page.get_by_label("What did you do?").fill("Chapter 1: installing a node")
            page.get_by_label("Evidence file").set_input_files(str(work))
            expect(
                page.get_by_text(f"{work.stat().st_size} bytes, sha256 {digest}")
            ).to_be_visible()
            page.get_by_label("Effort (minutes)").fill("90")
            page.get_by_role("button", name="Send contribution").click()
            expect(page.get_by_text(re.compile(r"^Sent: contribution"))).to_be_visible()
            mine = alice_api.request("GET", "/v1/contributions")["items"]
            assert [c["fields"]["evidence_uri"] for c in mine] == [f"workwork:sha256:{digest}"]
            assert mine[0]["fields"]["evidence_hash"] == digest
            stored = httpx.get(
                f"{alice_api.base_url}/v1/evidence/{digest}",
                headers={"Authorization": f"Bearer {alice_api.token}"},
            )
            assert stored.status_code == 200 and stored.content == work.read_bytes()
            cid = mine[0]["id"]

            # Olivia, in her own browser: the review queue names Alice and her file.
            with Client.connect(olivia) as owner_api:
                wait_until(lambda: _contributions(owner_api, pid), timeout=30)
            owner.get_by_role("link", name="Review").click()
            expect(owner).to_have_url(re.compile(r"#/review$"))
            card = owner.locator("article", has_text="Chapter 1: installing a node")
            expect(card.get_by_text("Alice")).to_be_visible()
            # Her file comes through Olivia's own node, fetched from Alice's and checked.
            with owner.expect_download() as download:
                card.get_by_role("link", name=f"file {digest[:8]}").click()
            assert Path(download.value.path()).read_bytes() == work.read_bytes()
            card.get_by_label("Weight").fill("10")
            card.get_by_role("button", name="Accept").click()
            expect(owner.get_by_text("Accepted with weight 10 into epoch 0")).to_be_visible()

            # Her project's page: anchor epoch 0, then fund it with 1 ETH.
            owner.goto(f"{owner.url.split('#')[0]}#/project/{pid}")
            owner.get_by_role("button", name="Anchor epoch 0").click()
            expect(owner.get_by_text(re.compile(r"^Anchored: root"))).to_be_visible()
            fund = owner.get_by_role("form", name="Fund epoch 0")
            fund.get_by_label("Amount").fill("1")
            fund.get_by_role("button", name="Fund epoch 0").click()
            expect(owner.get_by_text(re.compile(r"^Fund epoch 0: 1 ETH in tx"))).to_be_visible()
            # And through the project's pool: paid in, then allocated to the epoch.
            pool = owner.get_by_role("form", name="Fund the pool")
            pool.get_by_label("Amount").fill("0.5")
            pool.get_by_role("button", name="Fund the pool").click()
            expect(owner.get_by_text(re.compile(r"^Fund the pool: 0.5 ETH in tx"))).to_be_visible()
            allocate = owner.get_by_role("form", name="Allocate from pool to epoch 0")
            allocate.get_by_label("Amount").fill("0.5")
            allocate.get_by_role("button", name="Allocate from pool to epoch 0").click()
            expect(
                owner.get_by_text(re.compile(r"^Allocate from pool to epoch 0: 0.5 ETH"))
            ).to_be_visible()
            epoch = owner.locator("article.epoch", has_text="Epoch 0")
            expect(epoch.get_by_text("anchored", exact=True)).to_be_visible()
            expect(epoch.locator("td", has_text="1.5 ETH")).to_be_visible()
            _shot(owner, "2-owner-epochs")

            # Alice: once her node has the epoch root, she claims and sees the payout.
            wait_until(lambda: _anchored(alice_api, cid), timeout=30)
            page.get_by_role("link", name="My work").click()
            row = page.locator("article.contribution", has_text="Chapter 1")
            expect(row.locator("td").nth(1)).to_have_text("1.5 ETH")  # claimable
            balance = alice_api.request("GET", "/v1/chain")["balance"]
            row.get_by_role("button", name="Claim").click()
            expect(page.get_by_text(re.compile(r"^Claimed 1.5 ETH to 0x"))).to_be_visible()
            row = page.locator("article.contribution", has_text="Chapter 1")
            expect(row.locator("td").nth(2)).to_have_text("1.5 ETH")  # paid
            expect(row.get_by_role("button", name="Claim")).to_have_count(0)
            assert int(alice_api.request("GET", "/v1/chain")["balance"]) > int(balance)
            totals = page.locator(".totals")
            expect(totals.locator(".total", has_text="Paid so far")).to_contain_text("1.5 ETH")
            expect(totals.locator(".total", has_text="Claimable now")).to_contain_text("0 ETH")
            _shot(page, "3-paid")

            # Her portfolio: the anchored, paid contribution, ready to download.
            page.get_by_role("link", name="Portfolio").click()
            expect(page.get_by_role("cell", name="10", exact=True)).to_be_visible()
            expect(page.get_by_role("link", name="Download portfolio.json")).to_be_visible()

            # Olivia asks a question; Alice, whose anchored work gives her a vote, answers it.
            owner.get_by_label("Title").fill("Write chapter 2 next?")
            owner.get_by_role("button", name="Propose").click()
            expect(owner.get_by_text("Proposed", exact=True)).to_be_visible()
            wait_until(lambda: _proposals(alice_api, pid), timeout=30)
            base = page.url.split("#")[0]
            page.goto(f"{base}#/project/{pid}")
            proposal = page.locator("article.proposal", has_text="Write chapter 2 next?")
            proposal.get_by_role("button", name="Vote yes").click()
            expect(page.get_by_text("Voted yes", exact=True)).to_be_visible()
            proposal = page.locator("article.proposal", has_text="Write chapter 2 next?")
            expect(proposal.get_by_text(re.compile(r"yes 10 · no 0"))).to_be_visible()

            # For anyone: the node, its chain and its peers.
            page.goto(f"{base}#/node")
            expect(page.get_by_role("heading", name="Peers (1 connected)")).to_be_visible()
            expect(page.get_by_role("heading", name="Chain")).to_be_visible()
            _shot(page, "5-node")

            # Readable at phone width: nothing runs off the side of a 375 px screen.
            phone = _page(browser, errors, width=375)
            phone.context.add_cookies(page.context.cookies())
            phone.goto(f"{page.url.split('#')[0]}#/project/{pid}")
            expect(phone.get_by_role("heading", name="Contributions")).to_be_visible()
            assert phone.evaluate("document.documentElement.scrollWidth") <= 375
            _shot(phone, "4-phone-project")

            # Keyboard: the menu is reachable and works with Tab and Enter.
            page.goto(page.url.split("#")[0] + "#/mine")
            page.reload()
            page.keyboard.press("Tab")  # the skip link
            page.keyboard.press("Tab")  # the brand
            page.keyboard.press("Tab")  # Matches
            page.keyboard.press("Tab")  # Projects
            page.keyboard.press("Enter")
            expect(page).to_have_url(re.compile(r"#/projects$"))

            # Logging out ends the session in this browser: a reload does not bring it back.
            page.get_by_role("button", name="Log out").click()
            expect(page.get_by_role("heading", name="Log in")).to_be_visible()
            page.reload()
            expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    assert errors == []


def _deploy(url: str) -> str:
    """Deploys a settlement contract from a throwaway dev account; returns its address."""
    deployer = Account.create()
    anvil.rpc(url, "anvil_setBalance", [deployer.address, hex(ETHER)])
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 30}))
    return str(ChainClient.deploy(w3, deployer).contract.address)


def _knows(client: Client, pid: str) -> bool:
    return any(p["project_id"] == pid for p in client.request("GET", "/v1/projects")["items"])


def _contributions(client: Client, pid: str) -> bool:
    return bool(client.request("GET", f"/v1/projects/{pid}/contributions")["items"])


def _proposals(client: Client, pid: str) -> bool:
    return bool(client.request("GET", f"/v1/projects/{pid}/proposals")["items"])


def _anchored(client: Client, cid: str) -> bool:
    found = client.request("GET", f"/v1/contributions/{cid}")
    return bool(found["standing"]) and found["standing"]["status"] == "anchored"
