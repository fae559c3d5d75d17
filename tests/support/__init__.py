"""Helpers of the tests: record factories, real nodes, daemons, chains and anchored epochs.

| module | what |
|---|---|
| factories.py | valid records with fixed keys |
| strategies.py | hypothesis strategies of record bodies |
| nodes.py | real nodes on 127.0.0.1, bounded waits on conditions |
| cli.py | real `workwork` processes and daemons |
| anvil.py | anvil on a free loopback port, skipped when not installed |
| evm.py | the contract on eth-tester and anvil for the contract tests |
| epochs.py | an anchored epoch in a real store on a real chain |
| fixtures.py | fixtures every test directory shares (a pytest plugin) |
"""
