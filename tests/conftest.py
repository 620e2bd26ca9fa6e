"""Shared fixtures: the embedded dataset loaded once, a trained LeNet-300-100 once."""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest
import torch

import pruning_kit as pk

torch.set_num_threads(1)

# Fixtures that run a whole pipeline end to end or a real server (the nbgrader command line,
# PostgreSQL, a hub, a browser, a book build): every test that uses one is marked `e2e`,
# which `make test-fast` skips.
E2E_FIXTURES = {"course", "postgres", "real_class"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if E2E_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def mnist5k():
    """(train, test) of the embedded MNIST subset."""
    return pk.data.load("mnist5k")


@pytest.fixture(scope="session")
def trained_lenet_state(mnist5k):
    """state_dict of a LeNet-300-100 trained 10 epochs on mnist5k (seed 0)."""
    train, _ = mnist5k
    torch.manual_seed(0)
    model = pk.models.lenet_300_100()
    pk.train.fit(model, train, epochs=10, lr=2e-3, seed=0, progress=False)
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.fixture
def trained_lenet(trained_lenet_state):
    """A fresh copy of the trained LeNet-300-100 (safe to prune in a test)."""
    model = pk.models.lenet_300_100()
    model.load_state_dict(trained_lenet_state)
    return model.eval()


@pytest.fixture(scope="module")
def postgres():
    """A real PostgreSQL server on a free loopback port (Debian's binaries, as `postgres`).

    Started once per test module that asks for it, skipped with the reason where PostgreSQL can't
    be installed, stopped after the module.
    """
    from support.postgres import LocalPostgres, install_postgres

    reason = install_postgres()
    if reason:
        pytest.skip(reason)
    with LocalPostgres() as server:
        yield server


@pytest.fixture(scope="session")
def chromium():
    """Path of Debian's Chromium for the browser tests, installed with apt-get when missing
    (needs root); skipped, saying why, where that is impossible."""
    from support.browser import chromium_path

    path, reason = chromium_path()
    if path is None:
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def real_class(tmp_path_factory):
    """Both assignments released into a temporary course, the class of
    ``tests/support/real_class.py`` submitted and graded once, with two workers, by the real
    pipeline (the course's ``nbgrader_config.py``, sandbox on).

    Returns a namespace: ``root`` (the course), ``printed`` (what grading printed) and ``rows``
    (``{assignment: {student: row}}``, rows of ``grades.collect_grades``).
    """
    import io
    import shutil
    from pathlib import Path
    from types import SimpleNamespace

    from pruning_kit.course import autograde, release
    from support.real_class import TEST_CONFIG, submit_class

    repo = Path(__file__).resolve().parents[1]
    root = tmp_path_factory.mktemp("real_class") / "course"
    root.mkdir()
    shutil.copytree(repo / "solutions", root / "solutions",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    (root / "nbgrader_config.py").write_text((repo / "nbgrader_config.py").read_text()
                                             + TEST_CONFIG)
    release.release(root)
    submit_class(root)
    printed = io.StringIO()
    rows = {}
    for assignment in ("pruning", "binarized"):
        frame = autograde.grade(root, assignment, workers=2, progress=False, out=printed)
        rows[assignment] = {row["student"]: row for row in frame.to_dict("records")}
    return SimpleNamespace(root=root, printed=printed.getvalue(), rows=rows)
