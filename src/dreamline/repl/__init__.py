"""The invoke> REPL: prompt_toolkit session, command table, completion, validation and the runner.

Nothing here imports torch at module level; the runner imports the generator core the first time
an image is actually generated, so `dreamline --help`, `!help` and the tests stay fast.
"""
