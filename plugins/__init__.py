"""Finding agent plugins and running their code in child processes."""
