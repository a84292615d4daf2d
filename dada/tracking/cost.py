"""Search cost in device-hours, the unit of the paper's Table 1(a) ("GPU hours", measured on a Titan XP).

``device_hours = device_count * elapsed wall-clock hours``. On CUDA the unit is "GPU-hours" and the
clock synchronizes the device at start and stop, so queued kernels count in the phase that launched them.
On the CPU the unit is "CPU-hours" with ``device_count = 1``: one machine (process) per hour, not
multiplied by threads; the thread count is recorded separately as ``num_threads``.
"""

import time

import torch

from dada.runtime import resolve_device
from dada.schemas import EvalCost
from dada.tracking._system import device_name as _device_name


class DeviceClock:
    """Wall-clock device-hours of a phase; repeated start/stop spans add up.

    >>> with DeviceClock("cpu") as clock:
    ...     pass
    >>> clock.unit
    'CPU-hours'
    """

    def __init__(self, device: "str | torch.device" = "auto", device_count: int = 1):
        if device_count < 1:
            raise ValueError(f"device_count must be at least 1, got {device_count}")
        self.device = resolve_device(device) if isinstance(device, str) else torch.device(device)
        self.device_count = device_count
        self.device_name = _device_name(self.device)
        self.unit = {"cuda": "GPU-hours", "cpu": "CPU-hours"}.get(self.device.type, f"{self.device.type}-hours")
        self.num_threads = torch.get_num_threads()
        self._total_seconds = 0.0
        self._started_at: float | None = None

    def __repr__(self) -> str:
        return (
            f"DeviceClock(device_name={self.device_name!r}, device_count={self.device_count}, "
            f"seconds={self.seconds:.3f}, unit={self.unit!r}, running={self.running})"
        )

    def __enter__(self) -> "DeviceClock":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @property
    def running(self) -> bool:
        return self._started_at is not None

    def start(self) -> "DeviceClock":
        if self.running:
            raise RuntimeError("DeviceClock is already running; stop() it first")
        self._synchronize()
        self._started_at = time.perf_counter()
        return self

    def stop(self) -> float:
        """Stop the clock; returns the total seconds measured so far."""
        if not self.running:
            raise RuntimeError("DeviceClock is not running; start() it first")
        self._synchronize()
        self._total_seconds += time.perf_counter() - self._started_at
        self._started_at = None
        return self._total_seconds

    @property
    def seconds(self) -> float:
        """Measured seconds, including the span still running (without synchronizing)."""
        running = time.perf_counter() - self._started_at if self.running else 0.0
        return self._total_seconds + running

    @property
    def device_hours(self) -> float:
        return self.device_count * self.seconds / 3600

    def images_per_second(self, num_images: int) -> float:
        """Throughput over the measured time; the caller counts the images."""
        seconds = self.seconds
        if seconds <= 0:
            raise ValueError("the clock has measured no time yet; start() and stop() it first")
        return num_images / seconds

    def as_metrics(self, prefix: str = "cost/", num_images: int | None = None) -> dict[str, float]:
        """``{prefix}device_hours`` and ``{prefix}seconds`` (plus ``{prefix}images_per_second`` when counted)."""
        metrics = {f"{prefix}device_hours": self.device_hours, f"{prefix}seconds": self.seconds}
        if num_images is not None:
            metrics[f"{prefix}images_per_second"] = self.images_per_second(num_images)
        return metrics

    def as_tags(self, prefix: str = "cost/") -> dict[str, str]:
        """What the hours were measured on: device name, unit, device count and CPU threads, as strings."""
        return {
            f"{prefix}device_name": self.device_name,
            f"{prefix}unit": self.unit,
            f"{prefix}device_count": str(self.device_count),
            f"{prefix}num_threads": str(self.num_threads),
        }

    def device_info(self) -> dict[str, object]:
        """What the hours were measured on, as `dada.schemas.DeviceInfo`'s fields."""
        return {
            "unit": self.unit,
            "device_name": self.device_name,
            "device_count": self.device_count,
            "num_threads": self.num_threads,
        }


def eval_cost(clock: DeviceClock, seconds: float, flops: float | None = None) -> EvalCost:
    """An evaluation's or a detection's cost: ``seconds`` on ``clock``'s devices (across resumes), in device-hours."""
    return EvalCost(**clock.device_info(), eval_device_hours=clock.device_count * seconds / 3600, flops=flops)
