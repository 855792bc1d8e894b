"""``rlaasctl``, the operator's CLI over the public gRPC API: a client of the API like
``rlaas_sdk``, built only on the generated stubs, grpc/protobuf and the SDK.

Layout (each command group owns its flags and its handlers, as pip's commands do):

- ``main``: the top-level parser (global flags), running a command, error rendering;
- ``commands``: the registry of command groups, one module per group;
- ``client``: the channel and stubs every handler calls through;
- ``parsing``: leaf command / group / paging builders and shared argument types;
- ``output``: text rendering (tables, ``field: value`` lines);
- ``errors``: exit codes and failed-call reports.
"""
