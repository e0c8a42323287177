"""The configuration lives outside the application; each start records it when it changed."""

from dataclasses import replace

from support import NOW

from mes.services.configuration import effective_configuration, record_configuration
from mes.services.context import Context
from mes.settings import Settings
from mes.store.models import AuditEntry


def _settings(url: str, timeout: int) -> Settings:
    return Settings(
        instance_path=__import__("pathlib").Path("/nonexistent"),
        role="hub",
        site_code="TEST",
        site_name="Test site",
        time_zone="Europe/London",
        database_url=url,
        secret_key="x",
        session_timeout_seconds=timeout,
    )


def _configuration_entries(make_uow) -> list[AuditEntry]:
    with make_uow() as uow:
        return list(
            uow.session.query(AuditEntry)
            .filter(AuditEntry.record_type == "configuration")
            .order_by(AuditEntry.seq)
        )


def test_a_configuration_changed_outside_the_application_is_audited_at_the_next_start(
    make_uow, engine
):
    ctx = Context.command_line(NOW, "tester", "testhost")
    first = _settings(str(engine.url), timeout=300)
    with make_uow() as uow:
        assert record_configuration(uow, ctx, first)
    with make_uow() as uow:
        assert not record_configuration(uow, ctx, first)  # an unchanged restart records nothing
    changed = replace(first, session_timeout_seconds=900)
    with make_uow() as uow:
        assert record_configuration(uow, ctx, changed)
    entries = _configuration_entries(make_uow)
    assert [e.action for e in entries] == ["configuration recorded", "configuration changed"]
    assert entries[1].old["session_timeout_seconds"] == 300
    assert entries[1].new["session_timeout_seconds"] == 900
    assert entries[1].new == effective_configuration(changed)
    assert "outside the application" in entries[1].reason
    assert "x" not in entries[1].new.values()  # the secret key is never recorded
