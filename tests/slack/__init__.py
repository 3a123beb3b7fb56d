"""Slack adapter tests: the real Bolt app against a loopback Slack."""
