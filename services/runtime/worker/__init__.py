"""The runtime's end of the worker protocol: the link, its requests in flight, the listener the
worker connects to, and what its failures mean."""
