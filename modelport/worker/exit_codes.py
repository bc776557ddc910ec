"""The worker's exit statuses that mean something to the runtime (it reports each as such).

Stdlib only, Python >= 3.8: this module is copied into the user's environment.
"""

#: exit status after setup_failed (the runtime restarts the process to retry)
EXIT_SETUP_FAILED = 3
#: the model ran out of the memory limit the runtime set (MODELPORT_MEMORY_LIMIT, an
#: RLIMIT_DATA): the worker stops at once and the runtime reports it as such
EXIT_MEMORY_LIMIT = 86
