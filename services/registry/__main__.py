"""`python -m services.registry --home DIR [--listen ADDR]`"""

from services.component.entry import run_component
from services.registry.server import serve
from services.registry.settings import RegistrySettings

if __name__ == "__main__":
    run_component("registry", RegistrySettings, serve)
