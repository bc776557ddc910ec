"""`python -m services.runtime --home DIR [--listen ADDR]`"""

from services.component.entry import run_component
from services.runtime.server import serve
from services.runtime.settings import RuntimeSettings

if __name__ == "__main__":
    run_component("runtime", RuntimeSettings, serve)
