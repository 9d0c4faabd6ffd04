"""Typed, versioned messages between the supervisor and its child processes."""
