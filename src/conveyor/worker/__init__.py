"""The worker: claim loop, executor, heartbeat, maintenance and the process supervisor."""
