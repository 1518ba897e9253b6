import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def smollm2_path():
    """The real small model (installed by `tooltoken models pull smollm2-135m`)."""
    pytest.importorskip("llama_cpp")
    from tooltoken._models import resolve_model

    return str(resolve_model("smollm2-135m"))
