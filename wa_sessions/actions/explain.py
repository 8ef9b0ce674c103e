"""`wa-sessions explain PATH...`: for each file, its category, the rule and guard that decide it,
and whether `cleanup` and `emergency-cleanup` would delete it now, and why.

Read only, no lock: each tenant named is scanned once and the real planner (rules.plan_tenant) is
run on it with the regular and the emergency rules, so a deletion's reason is the text a real run
would record. Why a file is kept is worded here, from the same scan: the protected floor, no rule,
the rule's own limits, or the guard that overrides the rule (found by planning again with the
guards lifted).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from wa_sessions import layout
from wa_sessions.actions.common import tenant_state
from wa_sessions.actions.explain_verdicts import TenantView, explain_entry
from wa_sessions.config import Settings
from wa_sessions.errors import UsageError
from wa_sessions.results import Outcome, Result
from wa_sessions.stores import Store, Tenant, TenantUnavailable, open_store
from wa_sessions.stores.key_names import field_file_name
from wa_sessions.times import iso_datetime, utc_now

COMMAND = "explain"


def run_explain(settings: Settings, paths: Sequence[str]) -> Result:
    """Given file arguments (a path inside a tenant folder under root, or `COMPANY/NAME`), explain
    each one. Raise UsageError (exit 2) for a path outside root, a tenant or a file that does not
    exist; a tenant that cannot be read is an error of the result (exit 1)."""
    if not paths:
        raise UsageError("name at least one file: a path inside a tenant folder, or COMPANY/NAME")
    result = Result(COMMAND, settings.shown_store or str(settings.root), iso_datetime(utc_now()))
    with open_store(settings) as store:
        located = [_locate(settings, store, path) for path in paths]
        now = time.time()
        views: dict[str, TenantView] = {}
        unreadable: set[str] = set()
        for tenant, _name in located:
            if tenant.name in views or tenant.name in unreadable:
                continue
            try:
                with store.open(tenant) as keys:
                    views[tenant.name] = TenantView.of(settings, tenant, keys.scan(now, None), now)
            except TenantUnavailable as error:
                unreadable.add(tenant.name)
                result.errors.append(f"{layout.display_name(tenant.name)}: {error}")
        if settings.store is not None:  # a field, or the file name it is shown as
            located = [(tenant, _key_name(views.get(tenant.name), name)) for tenant, name in located]
        for tenant, name in located:
            view = views.get(tenant.name)
            if view is not None and not _exists(view, tenant, name):
                where = "" if settings.store is not None else "tenant folder "
                raise UsageError(f"no file {layout.display_name(name)} in {where}{tenant.path}")
        for tenant, name in located:
            view = views.get(tenant.name)
            if view is not None:
                result.explained.append(explain_entry(view, tenant, name))
    for view in sorted(views.values(), key=lambda view: (view.tenant.company, view.tenant.name)):
        before = tenant_state(view.tenant, view.scan, settings)
        result.tenants.append(Outcome(before, files_after=before.files))
    return result


# ---------------------------------------------------------------- which file


def _locate(settings: Settings, store: Store, argument: str) -> tuple[Tenant, str]:
    """The tenant and file name an argument names: `COMPANY/NAME` when its first part names a
    tenant (by id or folder name), else a path whose folder is a tenant folder under root. With a
    store: `INSTANCE/FIELD` (Redis) or `SESSION/ID` (MySQL) only (a key may hold a `/`)."""
    if settings.store is not None:
        company, slash, name = argument.partition("/")
        if not slash or not name or not layout.is_valid_company_argument(company):
            form = (
                "SESSION/ID, e.g. <session>"
                if settings.store.lower().startswith("mysql")
                else ("INSTANCE/FIELD, e.g. <instance id>")
            )
            raise UsageError(f"{argument!r} names no key: with --store write {form}/pre-key-1")
        return _one(store.tenants([company]), argument), name
    parts = argument.split("/")
    if not os.path.isabs(argument) and len(parts) == 2 and layout.is_valid_company_argument(parts[0]):
        company, name = parts
        try:
            tenants = store.tenants([company])
        except UsageError:
            if not os.path.lexists(argument):
                raise
        else:
            if name in ("", ".", ".."):
                raise UsageError(
                    f"{argument!r} names no file: write COMPANY/NAME, e.g. 962302/pre-key-1.json"
                )
            return _one(tenants, argument), name
    absolute = Path(os.path.abspath(argument))
    folder = absolute.parent
    if not _same_folder(folder.parent, settings.root):
        raise UsageError(f"{argument} is not a file in a tenant folder under root {settings.root}")
    tenants = [tenant for tenant in store.tenants([]) if tenant.name == folder.name]
    if not tenants:
        raise UsageError(
            f"{folder} is not a tenant folder (tenant_pattern {settings.tenant_pattern!r} under {settings.root})"
        )
    return tenants[0], absolute.name


def _one(tenants: Sequence[Tenant], argument: str) -> Tenant:
    if len(tenants) != 1:
        names = ", ".join(tenant.name for tenant in tenants)
        raise UsageError(f"{argument!r} is ambiguous: the company names several tenant folders ({names})")
    return tenants[0]


def _same_folder(first: Path, second: Path) -> bool:
    try:
        one, other = os.stat(first), os.stat(second)
    except OSError:
        return False
    return (one.st_dev, one.st_ino) == (other.st_dev, other.st_ino)


def _key_name(view: TenantView | None, name: str) -> str:
    """A key of a store named by its field (`sender-key-<group>::<user>::0`) or by the file name it
    is shown as (`sender-key-<group>--<user>--0.json`): the name the scan lists."""
    if view is None or name in view.entries:
        return name
    return field_file_name(name)


def _exists(view: TenantView, tenant: Tenant, name: str) -> bool:
    if layout.is_own_entry(name):  # never listed by a scan
        return os.path.lexists(tenant.path / name)
    return name in view.entries
