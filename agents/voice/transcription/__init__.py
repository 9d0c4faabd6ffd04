"""Agent transcripts kept in step with the audio being heard."""
