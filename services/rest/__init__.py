"""The REST bridge: every RPC over HTTP/JSON as its ``google.api.http`` annotation says.

A reverse proxy in the manner of grpc-gateway. Routes are read from the compiled
descriptors (``routes``), a request is transcoded from path, query and body into the
request message (``transcode``), sent to the gRPC server over a real socket so that auth,
validation and tenancy interceptors apply unchanged (``proxy``), and the answer or the
``google.rpc.Status`` comes back as proto3 JSON with grpc-gateway's HTTP status mapping
(``errors``). ``openapi`` writes the OpenAPI document from the same routes; ``server`` is
the aiohttp application ``rlaas serve`` runs beside the gRPC port.
"""
