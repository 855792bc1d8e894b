"""Training runs as TrainingService exposes them: a run is a TrainingRunWorkflow, and
Temporal is the source of truth for its state (services.training.workflow_resources):
the workflow id `training-run/<tenant>/<id>` keeps tenants apart, the id derives from
the request_id, the memo holds the request's digest and the run as created. QUEUED
until a worker starts training, RUNNING while it trains (its heartbeats carry the step
and loss) and registers the adapter, then SUCCEEDED, FAILED or CANCELLED.

Datasets are named through a ``DatasetResolver``: ``DatasetUris`` accepts what the
dataset builder returns, the dataset's object-store URI
(`datasets/<tenant>/<skill>/<content sha256>.parquet`, READY once it exists);
``DatasetResources`` adds dataset ids of datasets stored as resources."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from rlaas.registry.v1 import registry_pb2 as reg
from rlaas.training.v1 import training_pb2 as pb
from services.db import idempotency
from services.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound
from services.objects.store import ObjectStore, key_for_uri
from services.paging import page_request
from services.registry.service import RegistryCore
from services.registry.validation import parse_policy_id, skill_id_problem
from services.tenancy.principal import Principal, Scope
from services.training.loops import training_config_proto, training_settings
from services.training.workflow_resources import (
    Pending,
    WorkflowResources,
    digest,
    ended_status,
    failure_status,
    first_started,
    pack,
    pending_activity,
    resource_id,
    set_time,
    unpack,
)
from workflows.learning_types import (
    TrainAdapterInput,
    TrainingRunInput,
    TrainingRunResult,
    TrainingRunStatus,
)
from workflows.queues import CPU_TASK_QUEUE, GPU_TASK_QUEUE
from workflows.training_run import TrainingRunWorkflow, training_run_workflow_id
from workflows.training_types import DpoSettings, LoraSettings

_TRAIN = "train_adapter"
_FINISH_WAIT_S = 20.0
"""How long a cancel waits for the workflow to end before answering."""
_OUTPUT_ONLY = ("training_run_id", "state", "progress", "lineage", "error", "tenant_id",
                "learning_loop_id", "create_time", "start_time", "end_time")  # fmt: skip


# ---- datasets -----------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetRef:
    """A dataset a run may train on, as a resolver found it."""

    dataset_id: str
    """As the caller named it."""
    uri: str
    """Object-store URI of its Parquet (what the train activity reads)."""
    skill_id: str
    ready: bool = True
    content_sha256: str = ""
    version: int = 0
    reward_config: pb.RewardConfig | None = None
    """What it was built with (lineage), if known."""


class DatasetResolver(Protocol):
    async def resolve(self, caller: Principal, dataset_id: str) -> DatasetRef:
        """The caller's tenant's dataset; NOT_FOUND if it has none of that name."""
        ...


class DatasetUris:
    """Datasets named by their object-store URI, as the dataset builder stores them:
    `datasets/<tenant>/<skill>/<content sha256>.parquet`. Another tenant's URI, a URI
    outside the store and a missing object are all NOT_FOUND."""

    def __init__(self, objects: ObjectStore) -> None:
        self._objects = objects

    async def resolve(self, caller: Principal, dataset_id: str) -> DatasetRef:
        try:
            key = key_for_uri(self._objects, dataset_id)
        except InvalidArgument:  # not a URI of this store: no dataset of this tenant
            raise NotFound("dataset", dataset_id) from None
        kind, tenant, skill, name = ([*key.split("/"), "", "", ""])[:4]
        if (kind, tenant) != ("datasets", caller.tenant_id) or not name.endswith(".parquet"):
            raise NotFound("dataset", dataset_id)
        if key.count("/") != 3 or not await self._objects.exists(key):
            raise NotFound("dataset", dataset_id)
        return DatasetRef(dataset_id, self._objects.uri(key), skill,
                          content_sha256=name.removesuffix(".parquet"))  # fmt: skip


class DatasetResources:
    """Datasets stored as resources, read with ``get`` (GetPreferenceDataset's lookup:
    NOT_FOUND for a missing or another tenant's id); object-store URIs still go to
    ``uris``."""

    def __init__(
        self,
        get: Callable[[Principal, str], Awaitable[pb.PreferenceDataset]],
        uris: DatasetUris,
    ) -> None:
        self._get = get
        self._uris = uris

    async def resolve(self, caller: Principal, dataset_id: str) -> DatasetRef:
        if "://" in dataset_id:
            return await self._uris.resolve(caller, dataset_id)
        ds = await self._get(caller, dataset_id)
        return DatasetRef(
            ds.dataset_id, ds.storage_uri, ds.skill_id,
            ready=ds.state == pb.PreferenceDataset.STATE_READY,
            content_sha256=ds.content_sha256, version=ds.version,
            reward_config=ds.build_config.reward_config,
        )  # fmt: skip


# ---- the service --------------------------------------------------------------------


@dataclass(frozen=True)
class _Seen:
    """What Temporal says of one run's workflow."""

    run: pb.TrainingRun  # as created, with its id, tenant, times
    execution: WorkflowExecutionStatus | None
    status: TrainingRunStatus | None = None  # while running
    pending: Pending | None = None  # the train activity, while it is pending
    result: TrainingRunResult | None = None  # once completed


def _required(**fields: str) -> None:
    missing = [FieldViolation(name, "is required") for name, value in fields.items() if not value]
    if missing:
        raise InvalidArgument(missing)


class TrainingRunService:
    """``task_queue``: where training runs (the model-bearing workers' queue)."""

    def __init__(
        self,
        client_factory: Callable[[], Awaitable[Client]],
        registry: RegistryCore,
        datasets: DatasetResolver,
        *,
        task_queue: str = GPU_TASK_QUEUE,
        heartbeat_timeout_s: float = 120.0,
    ) -> None:
        self._runs = WorkflowResources(
            client_factory, "TrainingRunWorkflow", training_run_workflow_id, "training run"
        )
        self._registry = registry
        self._datasets = datasets
        self._task_queue = task_queue
        self._heartbeat_timeout_s = heartbeat_timeout_s

    # ---- create -------------------------------------------------------------------

    async def create(
        self, caller: Principal, run: pb.TrainingRun, request_id: str
    ) -> pb.TrainingRun:
        caller.require(Scope.TRAIN)
        lora, dpo = _validated(run, request_id)
        request_digest = digest(run)
        run_id = resource_id("tr", request_id)
        tenant_id = caller.tenant_id
        # A retry finds its run before anything is checked again (the dataset or the
        # baseline may have changed since).
        if await self._runs.replayed(tenant_id, run_id, request_digest, request_id):
            return await self.get(caller, run_id)
        parent = await self._parent(tenant_id, run)
        dataset = await self._dataset(caller, run)
        await self._check_accelerator(run.config)
        train = TrainAdapterInput(
            tenant_id, run.skill_id, run_id, dataset.uri, parent.policy_id,
            dataset_id=run.dataset_id, dataset_version=dataset.version,
            parent_adapter_uri=parent.adapter.artifact_uri,
            parent_adapter_sha256=parent.adapter.sha256,
            reward_config_version=dataset.reward_config.version if dataset.reward_config else "",
            lora=lora, dpo=dpo,
        )  # fmt: skip
        await self._start(caller, run, parent, dataset, train, request_digest, request_id)
        return await self.get(caller, run_id)

    async def _parent(self, tenant_id: str, run: pb.TrainingRun) -> reg.Policy:
        """The policy the run starts from: the one named, else the skill's baseline."""
        deployment = await self._registry.deployment(tenant_id, run.skill_id)
        if deployment is None:
            raise NotFound("skill", run.skill_id)
        if run.parent_policy_id:
            parent = await self._registry.policy(tenant_id, run.parent_policy_id)
            if parent.skill_id != run.skill_id:
                raise FailedPrecondition(
                    f"parent policy {parent.policy_id} belongs to skill {parent.skill_id!r}, "
                    f"not {run.skill_id!r}",
                    reason="POLICY_OF_ANOTHER_SKILL",
                )
        elif deployment.baseline_policy_id:
            parent = await self._registry.policy(tenant_id, deployment.baseline_policy_id)
        else:
            # The candidate copies its parent's prompt and generation settings: a bare
            # base model gives nothing to register the adapter against.
            raise FailedPrecondition(
                f"skill {run.skill_id!r} has no baseline; name a parent_policy_id "
                "or promote a first policy with RegistryService.PromotePolicy",
                reason="NO_BASELINE",
            )
        if run.base_model and run.base_model != parent.base_model:
            raise InvalidArgument.field(
                "training_run.base_model",
                f"training on another base model than the parent's ({parent.base_model!r}) "
                "is not supported yet: the training workers train the base model they serve",
            )
        return parent

    async def _dataset(self, caller: Principal, run: pb.TrainingRun) -> DatasetRef:
        dataset = await self._datasets.resolve(caller, run.dataset_id)
        if dataset.skill_id != run.skill_id:
            raise FailedPrecondition(
                f"dataset {run.dataset_id!r} belongs to skill {dataset.skill_id!r}, "
                f"not {run.skill_id!r}",
                reason="DATASET_OF_ANOTHER_SKILL",
            )
        if not dataset.ready:
            raise FailedPrecondition(
                f"dataset {run.dataset_id!r} is not READY", reason="DATASET_NOT_READY"
            )
        return dataset

    async def _check_accelerator(self, config: pb.TrainingConfig) -> None:
        wants_gpu = config.accelerator == pb.ACCELERATOR_GPU or config.lora.qlora
        if wants_gpu and not await self._gpu_worker_exists():
            raise FailedPrecondition(
                "no training worker with a GPU is polling the training queue "
                f"{self._task_queue!r}; QLoRA and ACCELERATOR_GPU need one",
                reason="NO_GPU_WORKER",
            )

    async def _gpu_worker_exists(self) -> bool:
        """A GPU worker names its CUDA device in its Temporal identity (see
        workers.worker.run_worker)."""
        client = await self._runs.temporal()
        reply = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=self._task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
            )
        )
        return any("cuda" in poller.identity for poller in reply.pollers)

    async def _start(
        self, caller: Principal, run: pb.TrainingRun, parent: reg.Policy, dataset: DatasetRef,
        train: TrainAdapterInput, request_digest: str, request_id: str,
    ) -> None:  # fmt: skip
        workflow_id = training_run_workflow_id(caller.tenant_id, train.run_id)
        created = pb.TrainingRun()
        created.CopyFrom(run)
        for name in _OUTPUT_ONLY:
            created.ClearField(name)
        created.parent_policy_id, created.base_model = parent.policy_id, parent.base_model
        lineage = pb.TrainingLineage(
            dataset_id=run.dataset_id, dataset_sha256=dataset.content_sha256,
            dataset_version=dataset.version, base_model=parent.base_model,
            parent_policy_id=parent.policy_id, parent_adapter_uri=parent.adapter.artifact_uri,
            parent_adapter_sha256=parent.adapter.sha256, workflow_id=workflow_id,
            reward_config=dataset.reward_config,
        )  # fmt: skip
        client = await self._runs.temporal()
        inp = TrainingRunInput(train, self._task_queue, self._heartbeat_timeout_s)
        try:
            await client.start_workflow(
                TrainingRunWorkflow.run, inp, id=workflow_id, task_queue=CPU_TASK_QUEUE,
                memo={"request_sha256": request_digest, "skill_id": run.skill_id,
                      "run": pack(created), "lineage": pack(lineage)},
            )  # fmt: skip
        except WorkflowAlreadyStartedError:  # a concurrent retry started it first
            await self._runs.replayed(caller.tenant_id, train.run_id, request_digest, request_id)

    # ---- read ---------------------------------------------------------------------

    async def get(self, caller: Principal, training_run_id: str) -> pb.TrainingRun:
        caller.require(Scope.TRAIN)
        _required(training_run_id=training_run_id)
        return _to_proto(await self._seen(caller.tenant_id, training_run_id))

    async def _seen(self, tenant_id: str, run_id: str) -> _Seen:
        described = await self._runs.describe(tenant_id, run_id)
        if described is None:
            raise NotFound("training run", run_id)
        memo = await described.memo()
        run = _created(tenant_id, run_id, memo)
        set_time(run, "create_time", described.start_time)
        set_time(run, "end_time", described.close_time)
        client = await self._runs.temporal()
        handle = client.get_workflow_handle_for(
            TrainingRunWorkflow.run, described.id, run_id=described.run_id
        )
        execution = described.status
        if execution == WorkflowExecutionStatus.RUNNING:
            pending = await pending_activity(client, described, _TRAIN)
            if pending is not None and pending.started_time is not None:
                set_time(run, "start_time", pending.started_time)
            elif pending is None:
                set_time(run, "start_time", await first_started(handle, _TRAIN))
            status = await handle.query(TrainingRunWorkflow.status)
            return _Seen(run, execution, status=status, pending=pending)
        set_time(run, "start_time", await first_started(handle, _TRAIN))
        if execution == WorkflowExecutionStatus.COMPLETED:
            return _Seen(run, execution, result=await handle.result())
        if execution == WorkflowExecutionStatus.FAILED:
            try:
                await handle.result()
            except WorkflowFailureError as err:
                run.error.CopyFrom(failure_status(err))
        elif execution != WorkflowExecutionStatus.CANCELED:
            run.error.CopyFrom(ended_status(execution))
        return _Seen(run, execution)

    async def list(
        self, caller: Principal, *, skill_id: str = "", state: int = 0,
        page_size: int = 0, page_token: str = "",
    ) -> tuple[list[pb.TrainingRun], str]:  # fmt: skip
        caller.require(Scope.TRAIN)
        page = page_request(page_size, page_token)

        def keep(memo: Mapping[str, Any]) -> bool:
            return not skill_id or memo.get("skill_id") == skill_id

        return await self._runs.page(
            caller.tenant_id, page, keep,
            lambda run_id: self.get(caller, run_id),
            lambda run: not state or run.state == state,
        )  # fmt: skip

    # ---- cancel -------------------------------------------------------------------

    async def cancel(
        self, caller: Principal, training_run_id: str, request_id: str
    ) -> pb.TrainingRun:
        caller.require(Scope.TRAIN)
        _required(training_run_id=training_run_id, request_id=request_id)
        idempotency.validate_request_id(request_id)
        current = await self.get(caller, training_run_id)
        if current.state == pb.TrainingRun.STATE_CANCELLED:
            return current  # cancelled already (a retry, say): unchanged
        _require_unfinished(current)
        client = await self._runs.temporal()
        handle = client.get_workflow_handle(
            training_run_workflow_id(caller.tenant_id, training_run_id)
        )
        with contextlib.suppress(RPCError):  # it ended meanwhile: the read below says how
            await handle.cancel()
        # Training stops at once; the answer shows the run CANCELLED, not cancelling.
        with contextlib.suppress(TimeoutError, WorkflowFailureError):
            await asyncio.wait_for(handle.result(), _FINISH_WAIT_S)
        after = await self.get(caller, training_run_id)
        _require_unfinished(after)
        return after


def _require_unfinished(run: pb.TrainingRun) -> None:
    """FAILED_PRECONDITION for a run that SUCCEEDED or FAILED (a run that finished
    training while the cancel was on its way ends SUCCEEDED: its policy exists)."""
    if run.state in (pb.TrainingRun.STATE_SUCCEEDED, pb.TrainingRun.STATE_FAILED):
        state = pb.TrainingRun.State.Name(run.state).removeprefix("STATE_")
        raise FailedPrecondition(
            f"training run {run.training_run_id} already {state}; there is nothing to cancel",
            reason="RUN_FINISHED",
            metadata={"state": state},
        )


# ---- validation ---------------------------------------------------------------------


def _validated(run: pb.TrainingRun, request_id: str) -> tuple[LoraSettings, DpoSettings]:
    """The contract's INVALID_ARGUMENT checks, every missing field named at once; the
    trainer's LoRA and DPO settings of a valid config."""
    violations = [
        FieldViolation(name, "is required")
        for name, value in (
            ("training_run.skill_id", run.skill_id),
            ("training_run.dataset_id", run.dataset_id),
            ("training_run.config.method", run.config.method),
            ("request_id", request_id),
        )
        if not value
    ]
    problem = skill_id_problem(run.skill_id)
    if run.skill_id and problem:
        violations.append(FieldViolation("training_run.skill_id", problem))
    if violations:
        raise InvalidArgument(violations)
    idempotency.validate_request_id(request_id)
    if run.parent_policy_id:
        parse_policy_id(run.parent_policy_id, "training_run.parent_policy_id")
    return training_settings(run.config, "training_run.config", what="a training run")


# ---- to the contract ----------------------------------------------------------------


def _created(tenant_id: str, run_id: str, memo: Mapping[str, Any]) -> pb.TrainingRun:
    run = unpack(pb.TrainingRun, memo.get("run"))
    run.training_run_id, run.tenant_id = run_id, tenant_id
    run.lineage.CopyFrom(unpack(pb.TrainingLineage, memo.get("lineage")))
    loop_run = memo.get("loop_run")
    if isinstance(loop_run, dict):
        _from_loop(run, memo, loop_run)
    return run


def _from_loop(run: pb.TrainingRun, memo: Mapping[str, Any], loop_run: Mapping[str, Any]) -> None:
    """A learning loop's run: its workflow writes a plain-JSON memo (workflows hold no
    protos); what it says becomes the run as created."""
    loop_id = str(memo.get("learning_loop_id", ""))
    run.skill_id, run.learning_loop_id = str(memo.get("skill_id", "")), loop_id
    run.display_name = f"learning loop {loop_id}, iteration {loop_run.get('iteration', '?')}"
    run.dataset_id = run.lineage.dataset_id = str(loop_run.get("dataset_id", ""))
    run.parent_policy_id = run.lineage.parent_policy_id = str(loop_run.get("parent_policy_id", ""))
    try:
        lora = LoraSettings(**loop_run.get("lora", {}))
        dpo = DpoSettings(**loop_run.get("dpo", {}))
    except (TypeError, ValueError):  # written by another version: leave the config out
        return
    run.config.CopyFrom(training_config_proto(lora, dpo))


def _to_proto(seen: _Seen) -> pb.TrainingRun:
    run = seen.run
    if seen.status is not None:
        _running(run, seen.status, seen.pending)
    elif seen.result is not None:
        _succeeded(run, seen.result)
    elif seen.execution == WorkflowExecutionStatus.CANCELED:
        run.state = pb.TrainingRun.STATE_CANCELLED
    else:
        run.state = pb.TrainingRun.STATE_FAILED
    return run


def _running(run: pb.TrainingRun, status: TrainingRunStatus, pending: Pending | None) -> None:
    if status.phase == "training" and (pending is None or not pending.started):
        run.state = pb.TrainingRun.STATE_QUEUED  # no worker has it (yet, or again)
    else:
        run.state = pb.TrainingRun.STATE_RUNNING
    beat = pending.heartbeat if pending is not None else None
    if isinstance(beat, dict):  # the train activity's heartbeat: step, loss, checkpoint
        run.progress.step = int(beat.get("step") or 0)
        run.progress.loss = float(beat.get("loss") or 0.0)
        set_time(run.progress, "update_time", pending.heartbeat_time if pending else None)


def _succeeded(run: pb.TrainingRun, result: TrainingRunResult) -> None:
    run.state = pb.TrainingRun.STATE_SUCCEEDED
    trained, metrics = result.trained, result.trained.metrics
    progress = run.progress
    progress.step = trained.steps
    progress.total_steps = int(metrics.get("total_steps", trained.steps))
    progress.loss = trained.final_loss
    progress.reward_margin = float(metrics.get("reward_margin", 0.0))
    progress.reward_accuracy = float(metrics.get("reward_accuracy", 0.0))
    progress.stopped_early = bool(metrics.get("stopped_early", 0.0))
    if run.HasField("end_time"):
        progress.update_time.CopyFrom(run.end_time)
    lineage, recorded = run.lineage, trained.lineage
    for name in ("base_model", "reference_model", "judge_version", "trainer_version", "device"):
        if recorded.get(name):
            setattr(lineage, name, str(recorded[name]))
    if not lineage.dataset_sha256 and recorded.get("dataset_sha256"):
        lineage.dataset_sha256 = str(recorded["dataset_sha256"])
    lineage.adapter_uri, lineage.adapter_sha256 = trained.adapter_uri, trained.adapter_sha256
    lineage.produced_policy_id = result.policy_id
