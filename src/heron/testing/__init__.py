"""Protocol-level fakes of the services Heron talks to, for tests and the local workspace."""
