"""Temporal task queues: the names a workflow's starter and its workers must agree on.
GPU work (training, GPU evaluation) has its own queue so that only workers on
accelerator machines poll it; everything else runs on the CPU queue. The GPU queue's
name is a setting (``RLAAS_GPU_TASK_QUEUE``); this is its default."""

CPU_TASK_QUEUE = "rlaas-cpu"
GPU_TASK_QUEUE = "rlaas-gpu"

QUEUES = {"cpu": CPU_TASK_QUEUE, "gpu": GPU_TASK_QUEUE}
