"""GitOps watcher: service YAML committed to a git repository, reconciled into the platform.

source.py reads a revision, render.py turns its YAML into desired services, diff.py
plans, sync.py applies a revision whole and reports status, loop.py decides when.
"""
