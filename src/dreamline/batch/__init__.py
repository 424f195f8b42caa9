"""Batch runs: the resumable manifest, folders of images, and the Ray driver (optional extra).

Nothing here is imported by the REPL itself; cli.py wires it in for ``--from_file`` runs.
"""
