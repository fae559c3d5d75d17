"""The `workwork` command: set up a node, run it, and drive it.

`init` and `keys` work on the data dir alone, and `node start` runs the daemon in the
foreground; every other command is a client of the running daemon's local API
(`node.client`), so it works while the daemon holds the store.

Output is for people by default (tables), and JSON with `--json` (before or after the command
name): the API's own JSON, with stable keys, for scripts and agents. Tables show ids by their
first 12 digits, which commands take as the id; `--wide` shows them whole.

| module | what |
|---|---|
| base.py | the root group, `--json`, and the helpers that show results |
| setup.py | `init`, `keys`, `node start`, `node stop`, `node unit` (a systemd unit) |
| network.py | `status`, `sync`, `dashboard`, `peers`, `connect` |
| work.py | profiles, projects, contributions, acceptances, export and import |
| settle.py | the chain, epochs, funding, claims, audits and proofs |
| match.py | `match`: open projects ranked for your profile, with reasons |
| wallet.py | `chain faucet` (dev chains) and `wallet send` |
| store.py | `store check` (and `--repair`), while no node runs |
| main.py | the entry point: failures to exit codes |

Adding a command: a function under the right group with `@output` (for --json) that calls the
client and hands the answer to `emit` with a renderer for people.
"""

from node.cli.main import main

__all__ = ["main"]
