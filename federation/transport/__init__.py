"""gRPC transport: mutual TLS, chunked tensor streams, status mapping.

The only layer (with `node.servicer` and `coordinator.client`) that touches
gRPC and the generated protobuf types.
"""
