"""Generated from protos/inference/ by `make protos`; never edit."""
