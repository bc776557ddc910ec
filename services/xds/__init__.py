"""The xDS control plane: the platform's routing served to Envoy and proxyless gRPC clients
over ADS (docs/xds.md)."""

from modelport.xds_protos import require

require()  # xds-protos lives beside the environment (modelport/xds_protos.py says why)
