"""Matching: open projects ranked for a profile, by the four parts of Ikigai, with reasons.

Sans-I/O: the ranker takes plain values (`model`) and `now`, and returns ranked matches; what
the node knows (records, accepted work, epochs and their funding) is gathered around it by
node/api/match.py. The default ranker needs no download and no extra package: BM25F over the
project's fields (`bm25`) through a table of concepts and their aliases (`synonyms`, read by
`terms`), so "ML", "machine-learning" and "machine learning" are one.

| module | what |
|---|---|
| model.py | what the ranker takes (Seeker, Work, Opening, Activity, Epoch) and gives (Match) |
| synonyms.py | the table of concepts, aliases and implications |
| terms.py | words to stems, tags and text to concepts |
| bm25.py | BM25F over a project's title, skills and description |
| pay.py | the needs and paid components, rates |
| ranker.py | love and good at, and the ranking |
"""

from node.match import bm25
from node.match.model import Activity, Component, Epoch, Match, Opening, Seeker, Work
from node.match.ranker import rank

__all__ = ["Activity", "Component", "Epoch", "Match", "Opening", "Seeker", "Work", "bm25", "rank"]
