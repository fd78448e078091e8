"""The interactive mode: a long-lived service of one user that holds a warm kernel, so that a repeated
`opsbook run` answers in about a second. The CLI asks it first and runs locally when no service answers.

- `wire`: where the socket lives, the one-JSON-line messages, the peer's credentials;
- `service`: the service itself (one request at a time, each in a fresh kernel);
- `client`: what `opsbook run` calls; None when it must run locally;
- `control`: start in the background, stop, status.
"""
