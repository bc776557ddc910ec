"""`python -m services.gateway --home DIR [--port N] [--grpc-port N] [--port-file F]`"""

from services.component.entry import run_component
from services.gateway.server import serve
from services.gateway.settings import GatewaySettings

if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    run_component("gateway", GatewaySettings, serve,
                  extra={"port": "", "grpc_port": "", "port_file": "", "host": ""})
