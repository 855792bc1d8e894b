"""TrainingService: learning loops (start, inspect, list, pause, resume) over Temporal.
Datasets, training runs, evaluations and rollouts as standalone resources are not served
yet: those RPCs answer UNIMPLEMENTED through the generated base class (the loop runs
all of them as its own steps)."""

from __future__ import annotations

import grpc

from rlaas.training.v1 import training_pb2, training_pb2_grpc
from services.paging import next_page_token, page_request
from services.server.app import Runtime, ServiceSpec
from services.server.interceptors import principal
from services.training.loops import LoopService


class TrainingServicer(training_pb2_grpc.TrainingServiceServicer):
    def __init__(self, loops: LoopService) -> None:
        self._loops = loops

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
        page = page_request(request.page_size, request.page_token)
        loops = sorted(
            await self._loops.list(principal(), request.skill_id), key=lambda x: x.learning_loop_id
        )
        if request.state:
            loops = [x for x in loops if x.state == request.state]
        if page.after:
            loops = [x for x in loops if x.learning_loop_id > page.after[0]]
        token = next_page_token(loops, page.size, lambda x: [x.learning_loop_id])
        return training_pb2.ListLearningLoopsResponse(
            learning_loops=loops[: page.size], next_page_token=token
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


def _make(runtime: Runtime) -> TrainingServicer:
    from temporalio.client import Client

    from workers.worker import connect

    async def client() -> Client:
        return await connect(runtime.settings)

    return TrainingServicer(LoopService(client))


SPEC = ServiceSpec(
    name="training",
    descriptor=training_pb2.DESCRIPTOR.services_by_name["TrainingService"],
    register=training_pb2_grpc.add_TrainingServiceServicer_to_server,
    make_servicer=_make,
)
