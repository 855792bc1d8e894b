"""Inference gateway benchmark (issue 4).

(a) Overhead: Infer through the whole path (auth, routing, guardrails, template,
    telemetry logging to Postgres) to an instant backend, against the same request and
    answer over a bare gRPC server that does nothing else (what calling an engine's own
    RPC costs): the gateway's added latency is the difference. The client is a separate
    process (as a caller is), pacing each arm at 100 req/s (open loop), the two arms
    alternating in blocks so machine noise hits them alike.
(c) Rollback propagation: two servers (separate runtimes, separate deployment caches);
    RollbackDeployment on server A, then server B is polled until 100% of its answers
    come from the baseline. With Postgres LISTEN/NOTIFY, and with the cache TTL alone.
Results: bench/results/gateway.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import numpy as np

from infra import migrate
from rlaas.inference.v1 import inference_pb2 as inf
from rlaas.inference.v1 import inference_pb2_grpc
from rlaas.registry.v1 import registry_pb2 as reg
from rlaas.registry.v1 import registry_pb2_grpc
from rlaas.telemetry.v1 import telemetry_pb2 as tel
from services.app import Runtime, server_options, start_server
from services.config import LogFormat, Settings
from services.inference.backends.base import GenerationRequest, GenerationResult
from services.logs import configure_logging
from services.tenancy.bootstrap import bootstrap_operator

RESULTS = Path(__file__).resolve().parent / "results" / "gateway.json"
CALLS = int(os.environ.get("BENCH_CALLS", "1000"))
RATE = 100.0
BLOCK = 100
ANSWER_TEXT = "Thanks, your order ships today."


class InstantBackend:
    """Answers at once: what is left of a call's latency is the gateway's."""

    name = "instant"

    async def generate(self, req: GenerationRequest, *, timeout_s: float) -> GenerationResult:
        return GenerationResult(ANSWER_TEXT, 12, 7, "stop")

    async def stream(self, req: GenerationRequest, *, timeout_s: float) -> AsyncIterator[str]:
        yield "Thanks."

    async def health(self) -> bool:
        return True

    async def close(self) -> None:
        return None


class BareInference(inference_pb2_grpc.InferenceServiceServicer):
    """An engine's own RPC, as cheap as it gets: the same request and answer messages
    over the same gRPC stack, answered at once; nothing else done."""

    def __init__(self, answer: inf.InferResponse) -> None:
        self.answer = answer

    async def Infer(self, request: inf.InferRequest, context: object) -> inf.InferResponse:
        return self.answer


def ask(user: str) -> inf.InferRequest:
    question = tel.ChatMessage(role=tel.ChatMessage.ROLE_USER, content="Where is my order?")
    return inf.InferRequest(
        skill="bench", user_id=user, request_id=str(uuid.uuid4()), messages=[question]
    )


async def client(gateway: str, bare: str, key: str, calls: int) -> dict[str, list[float]]:
    """The caller's side, in its own process: ``calls`` Infer per arm, paced at RATE,
    the arms alternating every BLOCK calls. Latencies in ms."""
    metadata = (("authorization", f"Bearer {key}"),)
    out: dict[str, list[float]] = {"gateway": [], "bare": []}
    async with (
        grpc.aio.insecure_channel(gateway) as gw_channel,
        grpc.aio.insecure_channel(bare) as bare_channel,
    ):
        stubs = {
            "gateway": inference_pb2_grpc.InferenceServiceStub(gw_channel),
            "bare": inference_pb2_grpc.InferenceServiceStub(bare_channel),
        }
        for arm, stub in stubs.items():  # warm-up
            for i in range(BLOCK):
                await stub.Infer(ask(f"w{arm}{i}"), metadata=metadata)

        async def one(arm: str, i: int) -> None:
            request = ask(f"u{i}")
            start = time.perf_counter()
            await stubs[arm].Infer(request, metadata=metadata)
            out[arm].append((time.perf_counter() - start) * 1000)

        for block in range(2 * calls // BLOCK):
            arm = ("bare", "gateway")[block % 2]
            tasks, t0 = [], time.perf_counter()
            for i in range(BLOCK):  # open loop: a request every 1/RATE s, whatever happens
                await asyncio.sleep(max(0.0, t0 + i / RATE - time.perf_counter()))
                tasks.append(asyncio.create_task(one(arm, block * BLOCK + i)))
            await asyncio.gather(*tasks)
    return out


async def run_client(gateway: str, bare: str, key: str, calls: int) -> dict[str, list[float]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.gateway", "--client", gateway, bare, str(calls),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, _ = await proc.communicate(key.encode())  # the key on stdin, not in argv
    if proc.returncode != 0:
        raise RuntimeError(f"the bench client failed ({proc.returncode})")
    result: dict[str, list[float]] = json.loads(stdout)
    return result


def pct(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values)
    return {
        "p50_ms": round(float(np.percentile(arr, 50)), 3),
        "p99_ms": round(float(np.percentile(arr, 99)), 3),
    }


async def main() -> None:
    import pgserver

    configure_logging(Settings(log_format=LogFormat.JSON, log_level="WARNING"))
    with tempfile.TemporaryDirectory() as tmp:
        pg = pgserver.get_server(Path(tmp) / "pg", cleanup_mode="stop")
        url = pg.get_uri()
        await migrate.upgrade_async(url)
        operator = await bootstrap_operator(Settings(), url)
        assert operator is not None
        key = (("authorization", f"Bearer {operator.secret}"),)

        def server_settings(ttl: float) -> Settings:
            return Settings(
                services=["inference", "registry"], deployment_cache_ttl_s=ttl,
                state_dir=Path(tmp) / "state", log_level="WARNING",
            )  # fmt: skip

        runtimes, servers = [], []
        for ttl in (0.5, 0.5, 30.0):  # A, B (listens), C (TTL 30 s: notify is all it has)
            runtime = Runtime.create(server_settings(ttl), url)
            runtime.backend = InstantBackend()
            runtimes.append(runtime)
            servers.append(await start_server(runtime, port=0))
        channels = [grpc.aio.insecure_channel(f"127.0.0.1:{s.port}") for s in servers]
        registry = registry_pb2_grpc.RegistryServiceStub(channels[0])

        def rid() -> str:
            return str(uuid.uuid4())

        await registry.CreateSkill(
            reg.CreateSkillRequest(skill=reg.Skill(skill_id="bench"), request_id=rid()),
            metadata=key,
        )
        ids = []
        for _ in range(2):
            made = await registry.CreatePolicy(
                reg.CreatePolicyRequest(
                    policy=reg.Policy(
                        skill_id="bench", base_model="instant",
                        prompt_template=reg.PromptTemplate(system_prompt="Be brief."),
                    ),
                    request_id=rid(),
                ),
                metadata=key,
            )  # fmt: skip
            ids.append(made.policy.policy_id)
        await registry.PromotePolicy(
            reg.PromotePolicyRequest(
                skill_id="bench", policy_id=ids[0], reason="b", request_id=rid()
            ),
            metadata=key,
        )

        # ---- (a) overhead ------------------------------------------------------------
        backend = InstantBackend()
        direct = []
        for _ in range(CALLS):
            start = time.perf_counter()
            await backend.generate(
                GenerationRequest([{"role": "user", "content": "x"}]), timeout_s=1
            )
            direct.append((time.perf_counter() - start) * 1000)
        gw = inference_pb2_grpc.InferenceServiceStub(channels[0])
        # The bare server answers what the gateway answers, byte for byte the same size.
        answer = await gw.Infer(ask("sample"), metadata=key)
        bare = grpc.aio.server(options=server_options(server_settings(0.5)))
        inference_pb2_grpc.add_InferenceServiceServicer_to_server(BareInference(answer), bare)
        bare_port = bare.add_insecure_port("127.0.0.1:0")
        await bare.start()
        latencies = await run_client(
            f"127.0.0.1:{servers[0].port}", f"127.0.0.1:{bare_port}", operator.secret, CALLS
        )
        await bare.stop(0)

        # ---- (c) rollback propagation -------------------------------------------------
        async def time_to_baseline(observer: int) -> float:
            all_canary = reg.TrafficConfig(canary=reg.CanaryTraffic(policy_id=ids[1], percent=100))
            await registry.SetTraffic(
                reg.SetTrafficRequest(
                    skill_id="bench", reason="b", request_id=rid(), traffic=all_canary
                ),
                metadata=key,
            )
            obs = inference_pb2_grpc.InferenceServiceStub(channels[observer])
            for _ in range(1000):  # until the observer serves the canary
                if (await obs.Infer(ask("probe"), metadata=key)).policy_id == ids[1]:
                    break
                await asyncio.sleep(0.01)
            await registry.RollbackDeployment(
                reg.RollbackDeploymentRequest(skill_id="bench", reason="b", request_id=rid()),
                metadata=key,
            )
            rolled = time.perf_counter()
            while True:
                answers = await asyncio.gather(
                    *(obs.Infer(ask(f"r{j}"), metadata=key) for j in range(10))
                )
                if all(a.policy_id == ids[0] for a in answers):
                    return (time.perf_counter() - rolled) * 1000
                await asyncio.sleep(0.005)

        notify_runs = [await time_to_baseline(1) for _ in range(5)]
        notify_only_runs = [await time_to_baseline(2) for _ in range(5)]

        for ch in channels:
            await ch.close()
        for server, runtime in zip(servers, runtimes, strict=True):
            await server.stop(0)
            await runtime.close()
        pg.cleanup()

    gw_pct, bare_pct = pct(latencies["gateway"]), pct(latencies["bare"])
    report = {
        "benchmark": "inference gateway: overhead and rollback propagation",
        "a_overhead": {
            "calls": CALLS,
            "target_rate_per_s": RATE,
            "client": "a separate process; the arms alternate every "
            f"{BLOCK} calls, each paced at {RATE:g}/s",
            "backend_direct": pct(direct),
            "bare_grpc": pct(latencies["bare"]),
            "through_gateway": pct(latencies["gateway"]),
            # What the gateway adds to calling an engine's RPC directly.
            "added_p50_ms": round(gw_pct["p50_ms"] - bare_pct["p50_ms"], 3),
            "added_p99_ms": round(gw_pct["p99_ms"] - bare_pct["p99_ms"], 3),
            "goal": "added p50 <= 2 ms, p99 <= 10 ms",
        },
        "c_rollback_to_full_baseline_ms": {
            "other_server_listen_notify_plus_0.5s_ttl": [round(x, 1) for x in notify_runs],
            "other_server_notify_only_ttl_30s": [round(x, 1) for x in notify_only_runs],
            "goal": "<= 1000 ms",
        },
        "machine": {"cpus": os.cpu_count()},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--client"]:
        gateway_target, bare_target, n = sys.argv[2:5]
        secret = sys.stdin.read().strip()
        print(json.dumps(asyncio.run(client(gateway_target, bare_target, secret, int(n)))))
    else:
        asyncio.run(main())
