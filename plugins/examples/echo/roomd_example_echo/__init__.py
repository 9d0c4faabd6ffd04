"""An example roomd agent plugin that needs no speech models."""
