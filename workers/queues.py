"""Temporal task queues. GPU work (training, GPU eval) has its own queue so that only
workers on accelerator machines poll it; everything else runs on the CPU queue."""

CPU_TASK_QUEUE = "rlaas-cpu"
GPU_TASK_QUEUE = "rlaas-gpu"

QUEUES = {"cpu": CPU_TASK_QUEUE, "gpu": GPU_TASK_QUEUE}
