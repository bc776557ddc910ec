"""What every component process is made of: its command line, threads of its own, lazy imports."""
