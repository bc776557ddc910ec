"""`python -m services.xds --home DIR [--listen HOST:PORT]`: run the xDS server."""

from services.component.entry import run_component
from services.xds.server import serve
from services.xds.settings import XdsSettings

if __name__ == "__main__":
    run_component("xds", XdsSettings, serve, extra={"envoy_port": "", "port_file": ""})
