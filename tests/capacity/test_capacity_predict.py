"""The model's predictions of the hogs and the starts the chapter measures."""

from __future__ import annotations

import numpy as np
import pytest

from sim.capacity import MiB, cpu_hog, fork_bomb, memory_hog
from sim.capacity.hogs import Hog
from sim.capacity.predict import predict_hog, predict_start, this_host
from sim.containers.limits import parse_limits
from sim.errors import InvalidSpecError


def test_a_memory_hog_is_predicted_to_die_at_memory_max() -> None:
    s = predict_hog(memory_hog(64, 2, 0.1), parse_limits(memory="16m"))
    killed = s.t[np.argmax(s.oom_kills > 0)]
    assert s.oom_kills[-1] == 1 and 0.3 <= killed <= 0.5  # (2s-1) x 2 MiB + 1 MiB passes 16 MiB in step 8
    assert s.memory.max() <= 16 * MiB and s.memory[-1] == 0 and s.cpu[-1] == 0
    assert s.limits == {"memory.max": 16 * MiB} and s.source == "model"


def test_the_same_hog_fits_a_larger_limit() -> None:
    s = predict_hog(memory_hog(16, 2, 0.1, duration_s=2.0), parse_limits(memory="256m"))
    assert s.oom_kills[-1] == 0 and s.at(1.5)["memory"] == 17 * MiB


def test_a_cpu_hog_is_throttled_to_its_quota() -> None:
    s = predict_hog(cpu_hog(2.0), parse_limits(cpus="0.5"))
    assert s.at(1.0)["cpu"] == pytest.approx(0.5)
    assert s.cpu_seconds == pytest.approx(1.0, abs=0.06)
    assert s.throttled[-1] == pytest.approx(1.0, abs=0.06)  # half of every period, as throttled_time counts
    free = predict_hog(cpu_hog(2.0))
    assert free.at(1.0)["cpu"] == pytest.approx(1.0) and free.throttled[-1] == 0


def test_a_fork_bomb_stops_at_pids_max() -> None:
    s = predict_hog(fork_bomb(30), parse_limits(pids_limit=10))
    assert s.pids.max() == 10 and s.limits["pids.max"] == 10
    assert predict_hog(fork_bomb(30)).pids.max() == 31


def test_hog_demand_follows_busybox() -> None:
    cpu, memory, tasks = memory_hog(16, 2, 0.1).demand(np.array([0.05, 0.75, 0.85, 5.0]))
    assert (memory / MiB).tolist() == [3.0, 31.0, 17.0, 0.0]  # (2s - 1) x step while copying, then s x step
    assert tasks.tolist() == [4.0, 4.0, 2.0, 0.0]
    assert cpu_hog(1, cores=2).demand(np.array([0.5]))[2].tolist() == [5.0]  # sh + 2 x (timeout + loop)
    for bad in (lambda: Hog("io", 1), lambda: cpu_hog(0), lambda: memory_hog(1, 2), lambda: fork_bomb(0)):
        with pytest.raises(ValueError):
            bad()
    with pytest.raises(InvalidSpecError):
        predict_hog("cpu")  # type: ignore[arg-type]


def test_predicted_starts_carry_the_published_defaults() -> None:
    vm = predict_start("vm", memory=256 << 20)
    assert vm.start_s == 44.2 and vm.source == "model" and vm.memory_bytes == 131_000_000 + (128 << 20)
    assert predict_start("microvm", memory=256 << 20).start_s == 0.125
    ct = predict_start("container", memory=256 << 20)
    assert ct.start_s == 0.225 and ct.memory_bytes == 11_000_000
    for kind, memory in (("lxc", 1), ("vm", 0), ("vm", 1.5)):
        with pytest.raises(InvalidSpecError):
            predict_start(kind, memory=memory)  # type: ignore[arg-type]


def test_this_host_is_this_machine() -> None:
    host = this_host()
    assert host.cores >= 1 and host.memory > 256 * MiB
