"""TrainingService: learning loops (start, inspect, list, pause, resume) and rollouts
(create, inspect, list, promote, roll back, pause, resume) over Temporal, and
preference datasets (create, inspect, list, export) over Postgres and the object store;
the domain logic is in services.training.loops, services.training.rollouts and
services.training.datasets; training runs (create, inspect, list, cancel) and
evaluations (create, inspect, list) over Temporal, in services.training.runs and
services.training.evaluations."""

from __future__ import annotations

import grpc

from rlaas.training.v1 import training_pb2, training_pb2_grpc
from services.paging import PageTokens, next_page_token, page_request
from services.server.interceptors import principal
from services.training.datasets import DatasetService
from services.training.evaluations import EvaluationService
from services.training.loops import LoopService
from services.training.rollouts import RolloutService
from services.training.runs import TrainingRunService


class TrainingServicer(training_pb2_grpc.TrainingServiceServicer):
    def __init__(
        self,
        loops: LoopService,
        rollouts: RolloutService,
        datasets: DatasetService,
        runs: TrainingRunService,
        evaluations: EvaluationService,
        pages: PageTokens,
    ) -> None:
        self._pages = pages
        self._loops = loops
        self._rollouts = rollouts
        self._datasets = datasets
        self._runs = runs
        self._evaluations = evaluations

    # ---- preference datasets -----------------------------------------------------

    async def CreatePreferenceDataset(
        self,
        request: training_pb2.CreatePreferenceDatasetRequest,
        context: grpc.aio.ServicerContext,
    ) -> training_pb2.CreatePreferenceDatasetResponse:
        dataset = await self._datasets.create(
            principal(), request.preference_dataset, request.request_id
        )
        return training_pb2.CreatePreferenceDatasetResponse(preference_dataset=dataset)

    async def GetPreferenceDataset(
        self, request: training_pb2.GetPreferenceDatasetRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.GetPreferenceDatasetResponse:
        dataset = await self._datasets.get(principal(), request.dataset_id)
        return training_pb2.GetPreferenceDatasetResponse(preference_dataset=dataset)

    async def ListPreferenceDatasets(
        self,
        request: training_pb2.ListPreferenceDatasetsRequest,
        context: grpc.aio.ServicerContext,
    ) -> training_pb2.ListPreferenceDatasetsResponse:
        page = self._pages.bind(principal().tenant_id, request)
        datasets, token = await self._datasets.list(
            principal(), skill_id=request.skill_id, state=request.state,
            page_size=request.page_size, page_token=page.cursor,
        )  # fmt: skip
        return training_pb2.ListPreferenceDatasetsResponse(
            preference_datasets=datasets, next_page_token=page.seal(token)
        )

    async def ExportDataset(
        self, request: training_pb2.ExportDatasetRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.ExportDatasetResponse:
        return await self._datasets.export(
            principal(), request.dataset_id, request.format, request.split, request.request_id
        )

    # ---- learning loops ----------------------------------------------------------

    async def StartLearningLoop(
        self, request: training_pb2.StartLearningLoopRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.StartLearningLoopResponse:
        loop = await self._loops.start(principal(), request.learning_loop, request.request_id)
        return training_pb2.StartLearningLoopResponse(learning_loop=loop)

    async def GetLearningLoop(
        self, request: training_pb2.GetLearningLoopRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.GetLearningLoopResponse:
        loop = await self._loops.get(principal(), request.learning_loop_id)
        return training_pb2.GetLearningLoopResponse(learning_loop=loop)

    async def ListLearningLoops(
        self, request: training_pb2.ListLearningLoopsRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.ListLearningLoopsResponse:
        bound = self._pages.bind(principal().tenant_id, request)
        page = page_request(request.page_size, bound.cursor)
        loops = sorted(
            await self._loops.list(principal(), request.skill_id), key=lambda x: x.learning_loop_id
        )
        if request.state:
            loops = [x for x in loops if x.state == request.state]
        if page.after:
            loops = [x for x in loops if x.learning_loop_id > page.after[0]]
        token = next_page_token(loops, page.size, lambda x: [x.learning_loop_id])
        return training_pb2.ListLearningLoopsResponse(
            learning_loops=loops[: page.size], next_page_token=bound.seal(token)
        )

    async def PauseLearningLoop(
        self, request: training_pb2.PauseLearningLoopRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.PauseLearningLoopResponse:
        loop = await self._loops.signal(
            principal(), request.learning_loop_id, "pause", request.request_id
        )
        return training_pb2.PauseLearningLoopResponse(learning_loop=loop)

    async def ResumeLearningLoop(
        self, request: training_pb2.ResumeLearningLoopRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.ResumeLearningLoopResponse:
        loop = await self._loops.signal(
            principal(), request.learning_loop_id, "resume", request.request_id
        )
        return training_pb2.ResumeLearningLoopResponse(learning_loop=loop)

    async def StopLearningLoop(
        self, request: training_pb2.StopLearningLoopRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.StopLearningLoopResponse:
        loop = await self._loops.stop(
            principal(), request.learning_loop_id, request.reason, request.request_id
        )
        return training_pb2.StopLearningLoopResponse(learning_loop=loop)

    # ---- rollouts ---------------------------------------------------------------

    async def CreateRollout(
        self, request: training_pb2.CreateRolloutRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.CreateRolloutResponse:
        rollout = await self._rollouts.create(principal(), request.rollout, request.request_id)
        return training_pb2.CreateRolloutResponse(rollout=rollout)

    async def GetRollout(
        self, request: training_pb2.GetRolloutRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.GetRolloutResponse:
        rollout = await self._rollouts.get(principal(), request.rollout_id)
        return training_pb2.GetRolloutResponse(rollout=rollout)

    async def ListRollouts(
        self, request: training_pb2.ListRolloutsRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.ListRolloutsResponse:
        page = self._pages.bind(principal().tenant_id, request)
        rollouts, token = await self._rollouts.list(
            principal(), skill_id=request.skill_id, state=request.state,
            page_size=request.page_size, page_token=page.cursor,
        )  # fmt: skip
        return training_pb2.ListRolloutsResponse(
            rollouts=rollouts, next_page_token=page.seal(token)
        )

    async def PromoteRollout(
        self, request: training_pb2.PromoteRolloutRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.PromoteRolloutResponse:
        rollout = await self._rollouts.promote(
            principal(), request.rollout_id, request.target_stage, request.reason,
            request.request_id,
        )  # fmt: skip
        return training_pb2.PromoteRolloutResponse(rollout=rollout)

    async def RollbackRollout(
        self, request: training_pb2.RollbackRolloutRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.RollbackRolloutResponse:
        rollout = await self._rollouts.rollback(
            principal(), request.rollout_id, request.reason, request.request_id
        )
        return training_pb2.RollbackRolloutResponse(rollout=rollout)

    async def PauseRollout(
        self, request: training_pb2.PauseRolloutRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.PauseRolloutResponse:
        rollout = await self._rollouts.pause(principal(), request.rollout_id, request.request_id)
        return training_pb2.PauseRolloutResponse(rollout=rollout)

    async def ResumeRollout(
        self, request: training_pb2.ResumeRolloutRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.ResumeRolloutResponse:
        rollout = await self._rollouts.resume(principal(), request.rollout_id, request.request_id)
        return training_pb2.ResumeRolloutResponse(rollout=rollout)

    # ---- training runs ------------------------------------------------------------

    async def CreateTrainingRun(
        self, request: training_pb2.CreateTrainingRunRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.CreateTrainingRunResponse:
        run = await self._runs.create(principal(), request.training_run, request.request_id)
        return training_pb2.CreateTrainingRunResponse(training_run=run)

    async def GetTrainingRun(
        self, request: training_pb2.GetTrainingRunRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.GetTrainingRunResponse:
        run = await self._runs.get(principal(), request.training_run_id)
        return training_pb2.GetTrainingRunResponse(training_run=run)

    async def ListTrainingRuns(
        self, request: training_pb2.ListTrainingRunsRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.ListTrainingRunsResponse:
        page = self._pages.bind(principal().tenant_id, request)
        runs, token = await self._runs.list(
            principal(), skill_id=request.skill_id, state=request.state,
            page_size=request.page_size, page_token=page.cursor,
        )  # fmt: skip
        return training_pb2.ListTrainingRunsResponse(
            training_runs=runs, next_page_token=page.seal(token)
        )

    async def CancelTrainingRun(
        self, request: training_pb2.CancelTrainingRunRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.CancelTrainingRunResponse:
        run = await self._runs.cancel(principal(), request.training_run_id, request.request_id)
        return training_pb2.CancelTrainingRunResponse(training_run=run)

    # ---- evaluations --------------------------------------------------------------

    async def CreateEvaluation(
        self, request: training_pb2.CreateEvaluationRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.CreateEvaluationResponse:
        evaluation = await self._evaluations.create(
            principal(), request.evaluation, request.request_id
        )
        return training_pb2.CreateEvaluationResponse(evaluation=evaluation)

    async def GetEvaluation(
        self, request: training_pb2.GetEvaluationRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.GetEvaluationResponse:
        evaluation = await self._evaluations.get(principal(), request.evaluation_id)
        return training_pb2.GetEvaluationResponse(evaluation=evaluation)

    async def ListEvaluations(
        self, request: training_pb2.ListEvaluationsRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.ListEvaluationsResponse:
        page = self._pages.bind(principal().tenant_id, request)
        evaluations, token = await self._evaluations.list(
            principal(), skill_id=request.skill_id,
            candidate_policy_id=request.candidate_policy_id, state=request.state,
            page_size=request.page_size, page_token=page.cursor,
        )  # fmt: skip
        return training_pb2.ListEvaluationsResponse(
            evaluations=evaluations, next_page_token=page.seal(token)
        )
