"""The local backend as a standalone model server (``rlaas model-server``): the local
model behind **KServe v2 gRPC** (the tensor convention is in ``kserve_grpc``; the
``triton`` client is tested against it until the real Triton server serves the stack) and
an **OpenAI-compatible HTTP** API (``openai_http``: any OpenAI client can use the local
model). It is not the vLLM engine: the ``vllm`` backend is tested against real vLLM.
The modules, each importing only those before it:

- ``core``: what both protocols share (the backend, the adapters loaded by name, the
  request timeout, the generation defaults);
- ``kserve_grpc``: the KServe v2 gRPC servicer;
- ``openai_http``: the OpenAI-compatible HTTP app;
- ``server``: both on their ports (``start_model_server``, ``ModelServerHandle``);
- ``cli``: the ``rlaas model-server`` command (``main``), also run by ``__main__``.

Run: ``python -m services.inference.model_server --grpc-port P --http-port Q
[--model-dir D | --gguf [PATH]] [--cache-dir C]``.
"""

from services.inference.model_server.cli import main
from services.inference.model_server.core import DEFAULT_MAX_TOKENS, DEFAULT_TIMEOUT_S
from services.inference.model_server.kserve_grpc import FINAL_RESPONSE, KServeServicer
from services.inference.model_server.openai_http import OpenAIRoutes
from services.inference.model_server.server import ModelServerHandle, start_model_server

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_TIMEOUT_S",
    "FINAL_RESPONSE",
    "KServeServicer",
    "ModelServerHandle",
    "OpenAIRoutes",
    "main",
    "start_model_server",
]
