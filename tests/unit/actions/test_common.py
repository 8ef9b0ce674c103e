"""actions/common.py: a tenant's state from its scan, and the outcomes of tenants not handled."""

from __future__ import annotations

from pathlib import Path

import pytest

from wa_sessions import layout
from wa_sessions.actions.common import failed, tenant_state, unavailable, validate_companies
from wa_sessions.config import load_settings
from wa_sessions.errors import UsageError
from wa_sessions.key_groups import Columns
from wa_sessions.layout import Creds
from wa_sessions.scan import TenantScan
from wa_sessions.stores import Tenant, TenantUnavailable

TENANT = Tenant("962302", "company_962302", Path("/srv/sessions/company_962302"))


def test_the_state_of_a_scanned_tenant_has_its_status_from_the_thresholds() -> None:
    counts = dict.fromkeys(layout.CATEGORIES, 0) | {"pre-key": 176}
    scan = TenantScan(Columns({}, set()), Creds("ok"), ["a problem"], counts, 1760)
    state = tenant_state(TENANT, scan, load_settings(None, {"root": "/srv/sessions"}))
    assert (state.company, state.files, state.bytes, state.status) == ("962302", 176, 1760, "trigger")
    assert state.problems == ["a problem"] and state.categories["pre-key"] == 176


def test_an_unreadable_tenant_is_skipped_as_an_error_and_a_symlinked_one_is_not() -> None:
    settings = load_settings(None, {"root": "/srv/sessions"})
    outcome = unavailable(settings, TENANT, TenantUnavailable("cannot open tenant folder: denied"), False)
    assert (outcome.action, outcome.skipped_reason) == ("skipped", "cannot open tenant folder: denied")
    assert outcome.errors == [("company_962302", "cannot open tenant folder: denied")]
    linked = Tenant("962302", "company_962302", TENANT.path, is_symlink=True)
    assert unavailable(settings, linked, TenantUnavailable("a symlink"), False).errors == []


def test_a_tenant_whose_handling_raised_is_skipped_with_the_error() -> None:
    outcome = failed(load_settings(None, {"root": "/srv/sessions"}), TENANT, RuntimeError("boom"), True)
    assert (outcome.skipped_reason, outcome.dry_run) == ("failed", True)
    assert outcome.errors == [("company_962302", "RuntimeError: boom")]


@pytest.mark.parametrize("company", ["../x", "", "a/b", ".hidden", "x\x00y"])
def test_a_malformed_company_is_a_usage_error(company: str) -> None:
    with pytest.raises(UsageError, match="invalid --company"):
        validate_companies([company])
