"""A roomd agent plugin whose behaviour a test chooses per job."""

# Tests build copies of this package with another version to exercise reloads; the
# agent announces it in its participant attributes so a test can tell which code runs.
VERSION = "1.0.0"
