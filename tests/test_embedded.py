"""`make run` starts every service of the catalog and waits for each."""

from deploy.embedded import ready, run
from services.catalog import DEFINITIONS
from services.common.config import SERVICE_PORTS


def procfile_names() -> set[str]:
    lines = run.PROCFILE.read_text().splitlines()
    return {line.split(":", 1)[0] for line in lines if line.strip()}


def test_make_run_starts_every_service_of_the_catalog_from_the_procfile() -> None:
    services = {definition.name for definition in DEFINITIONS}

    assert services == set(SERVICE_PORTS)
    assert services <= set(run.APP_PROCESSES)
    assert set(run.APP_PROCESSES) <= procfile_names()
    assert set(ready.SERVICES) == services
