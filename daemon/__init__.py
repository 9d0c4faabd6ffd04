"""The roomd supervisor: everything that runs in the long-lived daemon process."""
