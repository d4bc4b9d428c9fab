"""Fixtures shared by name across test modules (pytest finds them here without an import)."""

import pytest
import torch


@pytest.fixture
def one_thread():
    """Tiny ops run fastest on one thread, and do not stall when other jobs share the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
