"""The registry contract (suite.py) against Debian's docker-registry through the httpx client:
the same tests the model passes, so the model's rules are the real registry's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sim.registries.api import RegistryClient

from .suite import RegistryContract

pytestmark = pytest.mark.real


class TestHttpContract(RegistryContract):
    @pytest.fixture
    def registry(self, tmp_path: Path) -> Iterator[RegistryClient]:
        from realrt.registries import HttpRegistry, RegistryServer

        with RegistryServer(tmp_path / "registry") as server, HttpRegistry(server.url) as client:
            yield client
