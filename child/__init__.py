"""The code that runs inside child processes: the zygote (template) and the job runtime.

Nothing here is imported by the supervisor except ``describe`` helpers used by tests.
"""
