"""The two-command demo and what it stands on: a loopback Confluence fake serving the bundled sample wiki.

Kept apart from the composition root: the fake is test and demo infrastructure (the tests and the benches
drive it too), never part of a deployment's wiring. `run` holds `wikibot demo`; `confluence_fake` the
fake; `sample_wiki/` the pages it serves (package data).
"""
