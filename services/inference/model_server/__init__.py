"""The local backend as a standalone model server (``rlaas model-server``): the local
model behind an **OpenAI-compatible HTTP** API (chat and raw completions, streaming, and
vLLM's ``/v1/load_lora_adapter``/``/v1/unload_lora_adapter``), so any OpenAI client can
use the local model and its adapters without the platform. It is not a serving engine of
the stack: ``rlaas up`` starts the real vLLM or Triton for that. The modules, each
importing only those before it:

- ``core``: the backend, the adapters loaded by name, the request timeout, the
  generation defaults;
- ``openai_http``: the OpenAI-compatible HTTP app;
- ``server``: the app on its port (``start_model_server``, ``ModelServerHandle``);
- ``cli``: the ``rlaas model-server`` command (``main``), also run by ``__main__``.

Run: ``python -m services.inference.model_server --http-port P
[--model-dir D | --gguf [PATH]] [--cache-dir C]``.
"""

from services.inference.model_server.cli import main
from services.inference.model_server.core import DEFAULT_MAX_TOKENS, DEFAULT_TIMEOUT_S
from services.inference.model_server.openai_http import OpenAIRoutes
from services.inference.model_server.server import ModelServerHandle, start_model_server

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_TIMEOUT_S",
    "ModelServerHandle",
    "OpenAIRoutes",
    "main",
    "start_model_server",
]
