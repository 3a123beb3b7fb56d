"""The platform manifests: Slack's app manifest (slack.yaml) and the Teams app package sources (teams/).

A package only so that they ship as package data: `wikibot teams-package` reads them through
importlib.resources, from a checkout or an installed wheel alike. There is no code here.
"""
