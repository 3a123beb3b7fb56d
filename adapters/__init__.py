"""Channel adapters: each turns one platform's events into IncomingMessage and posts the Reply back."""
