"""The daemon's side of plugins: finding them without importing their code (discovery), naming
a single-file agent's target (script), and the limits a plugin runs under (limits)."""
