"""Loopback fakes of the remote services WikiBot talks to: they behave like the real ones, on 127.0.0.1."""
