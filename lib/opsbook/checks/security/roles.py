"""Roles and connections on any PostgreSQL: privileged logins, passwords without expiry, CREATE on public, default
privileges, SSL, pg_hba.conf."""
from __future__ import annotations

import ipaddress

from ...core.errors import SkipCheck
from ...core.findings import PARTIAL, Finding, Severity
from ..registry import Check, CheckContext, register
from ...database.readable import access

RUNBOOKS = ("security-audit",)
# Superuser/replication/BYPASSRLS roles the platform itself logs in with (Supabase, RDS, Cloud SQL, Azure), besides
# the cluster's bootstrap superuser: not the customer's to remove.
PLATFORM_ROLES = ("postgres", "supabase_admin", "supabase_replication_admin", "supabase_read_only_user",
                  "supabase_etl_admin", "supabase_storage_admin", "supabase_auth_admin", "rdsadmin",
                  "rdsrepladmin", "cloudsqladmin", "cloudsqlsuperuser", "azure_superuser", "azuresu")


def readable(ctx: CheckContext, relation: str) -> bool:
    """Whether this role may read `relation`, from the catalogue (no query that the server would refuse)."""
    return access(ctx.db, relation)[relation].readable


# ---------------------------------------------------------------- security.superusers
def superusers(ctx: CheckContext):
    df = ctx.db.fetch("security/privileged_roles")
    trusted = set(PLATFORM_ROLES) | set(ctx.params.get("trusted_roles") or [])
    df["platform"] = df["bootstrap"].astype(bool) | df["role_name"].isin(trusted)
    return df


def judge_superusers(df) -> list[Finding]:
    out = []
    for r in df[~df["platform"].astype(bool)].itertuples():
        powers = ", ".join(p for p, on in (("SUPERUSER", r.superuser), ("REPLICATION", r.replication),
                                           ("BYPASSRLS", r.bypassrls)) if on)
        out.append(Finding("security.superusers", Severity.WARNING, f"login role {r.role_name} has {powers}",
                           detail="A role that can log in with these powers reads everything (SUPERUSER, BYPASSRLS) "
                                  "or streams every change (REPLICATION); a leaked password is a full breach. "
                                  "Platform roles are not counted.",
                           objects=[r.role_name],
                           remediation=f"ALTER ROLE {r.role_name} " + " ".join(
                               "NO" + p for p in powers.split(", ")) + ";  -- or NOLOGIN if nobody uses it"))
    platform = ", ".join(df[df["platform"].astype(bool)]["role_name"])
    return out or [Finding("security.superusers", Severity.OK,
                           "no login role with superuser, replication or BYPASSRLS beyond the platform's",
                           detail=f"Platform roles: {platform or 'none'}.")]


SUPERUSERS = register(Check(
    id="security.superusers",
    description="Roles that can log in with SUPERUSER, REPLICATION or BYPASSRLS, beyond the bootstrap superuser "
                "and the platform's own roles (Supabase, RDS, Cloud SQL, Azure); the runbook's trusted_roles "
                "adds more.",
    data=superusers, judge=judge_superusers, queries=("security/privileged_roles",), runbooks=RUNBOOKS))


# ---------------------------------------------------------------- security.password_expiry
def password_expiry(ctx: CheckContext):
    if not readable(ctx, "pg_catalog.pg_authid"):  # asked first: a refused query is an ERROR in the server log
        raise SkipCheck(f"{PARTIAL}: passwords are visible only to superusers (pg_authid); run as a superuser to "
                        "see which login roles have one without VALID UNTIL")
    return ctx.db.fetch("security/password_expiry")


def judge_password_expiry(df) -> list[Finding]:
    if not len(df):
        return [Finding("security.password_expiry", Severity.OK, "every login role with a password has VALID UNTIL")]
    names = ", ".join(df["role_name"])
    md5 = ", ".join(df[df["password_kind"] == "md5"]["role_name"])
    return [Finding("security.password_expiry", Severity.INFO,
                    f"{len(df)} login role(s) with a password that never expires: {names}",
                    detail="The guides ask for credentials rotated regularly; without VALID UNTIL nothing forces it."
                           + (f" md5 password hashes (deprecated since PostgreSQL 18; use scram-sha-256): {md5}."
                              if md5 else ""),
                    objects=list(df["role_name"]), value=len(df),
                    remediation="ALTER ROLE <name> VALID UNTIL '<date>';  -- and rotate the password on that "
                                "schedule (\\password in psql)")]


PASSWORD_EXPIRY = register(Check(
    id="security.password_expiry",
    description="Login roles with a password and no VALID UNTIL (pg_authid, superusers only: skipped otherwise).",
    data=password_expiry, judge=judge_password_expiry, queries=("security/password_expiry",), runbooks=RUNBOOKS))


# ---------------------------------------------------------------- security.public_schema_create
def schema_create(ctx: CheckContext):
    return ctx.db.fetch("security/schema_create")


def judge_schema_create(df) -> list[Finding]:
    out = []
    for (schema,), g in df.groupby(["schema_name"], sort=True):
        who = ", ".join(g["grantee"])
        out.append(Finding("security.public_schema_create", Severity.WARNING,
                           f"{who} may CREATE objects in schema {schema}",
                           detail="Anyone who can create in a schema on everybody's search_path can plant a "
                                  "function or table that shadows the real one (CVE-2018-1058); PostgreSQL 15 "
                                  "stopped granting this by default.",
                           objects=[schema],
                           remediation=f"REVOKE CREATE ON SCHEMA {schema} FROM {who};"))
    return out or [Finding("security.public_schema_create", Severity.OK,
                           "neither PUBLIC nor the API roles may create objects in a user schema")]


PUBLIC_SCHEMA_CREATE = register(Check(
    id="security.public_schema_create",
    description="Schemas (public first among them) on which PUBLIC, anon or authenticated hold CREATE.",
    data=schema_create, judge=judge_schema_create, queries=("security/schema_create",), runbooks=RUNBOOKS))


# ---------------------------------------------------------------- security.default_privileges
def default_privileges(ctx: CheckContext):
    return ctx.db.fetch("security/default_privileges")


def judge_default_privileges(df) -> list[Finding]:
    out = []
    for r in df.itertuples():
        where = f"in schema {r.schema_name}" if r.schema_name else "in every schema"
        schema_clause = f" IN SCHEMA {r.schema_name}" if r.schema_name else ""
        out.append(Finding("security.default_privileges", Severity.WARNING,
                           f"new {r.object_type.lower()} created by {r.owner_role} {where} are granted to "
                           f"{r.grantee}: {r.privileges}",
                           detail="Every future object gets these privileges the moment it is created: a new table "
                                  "is readable and writable through the API before anyone enables row-level "
                                  "security on it (Supabase sets this up for anon by default).",
                           objects=[f"{r.owner_role}:{r.schema_name or '*'}:{r.object_type.lower()}"],
                           remediation=f"ALTER DEFAULT PRIVILEGES FOR ROLE {r.owner_role}{schema_clause} REVOKE ALL "
                                       f"ON {r.object_type} FROM {r.grantee};  -- then GRANT per object, after its "
                                       "policies exist"))
    return out or [Finding("security.default_privileges", Severity.OK,
                           "no default privilege grants future objects to PUBLIC or anon")]


DEFAULT_PRIVILEGES = register(Check(
    id="security.default_privileges",
    description="ALTER DEFAULT PRIVILEGES entries that grant future tables, sequences or functions to PUBLIC or "
                "anon (PUBLIC's built-in EXECUTE on functions is PostgreSQL's own default and not counted).",
    data=default_privileges, judge=judge_default_privileges, queries=("security/default_privileges",),
    runbooks=RUNBOOKS))


# ---------------------------------------------------------------- security.ssl
def is_local(addr) -> bool:
    """Loopback addresses and names; None (a Unix socket) counts as local."""
    if addr is None or addr != addr or str(addr).strip() in ("", "localhost", "samehost"):
        return True
    try:
        return ipaddress.ip_network(str(addr).strip(), strict=False).is_loopback
    except ValueError:
        return False


def ssl_data(ctx: CheckContext):
    df = ctx.db.fetch("security/ssl")
    if not len(df):
        df.attrs.update(ssl=ctx.db.scalar("SELECT current_setting('ssl')"),
                        listen=ctx.db.scalar("SELECT current_setting('listen_addresses')"))
    else:
        df.attrs.update(ssl=df["ssl_setting"].iloc[0], listen=df["listen_addresses"].iloc[0])
    return df


def judge_ssl(df) -> list[Finding]:
    ssl, listen = str(df.attrs.get("ssl")), str(df.attrs.get("listen")) or ""
    addrs = [a.strip() for a in listen.split(",") if a.strip()]
    remote_listen = [a for a in addrs if a == "*" or not is_local(a)]
    hidden = int(df["client_port"].isna().sum()) if len(df) else 0
    seen = df[df["client_port"].notna()] if len(df) else df
    plain = (seen[~seen["ssl_used"].fillna(False).astype(bool) & ~seen["client_addr"].map(is_local).astype(bool)]
             if len(seen) else seen)
    out = []
    if ssl != "on":
        sev = Severity.WARNING if remote_listen else Severity.INFO
        out.append(Finding("security.ssl", sev, f"ssl is off; the server listens on {listen or 'sockets only'}",
                           detail=("Clients on the network send passwords and data in clear text."
                                   if remote_listen else "Only local connections are possible, so nothing crosses "
                                   "a network in clear text."),
                           remediation="" if not remote_listen else
                           "Set ssl = on with ssl_cert_file/ssl_key_file, then require it: hostssl lines in "
                           "pg_hba.conf (and sslmode=require or verify-full in clients)."))
    for (addr, role), g in (plain.groupby(["client_addr", "role_name"], sort=True) if len(plain) else []):
        out.append(Finding("security.ssl", Severity.WARNING,
                           f"{len(g)} connection(s) of {role} from {addr} without SSL",
                           detail="This client crosses a network unencrypted.", objects=[str(addr)], value=len(g),
                           remediation="Connect with sslmode=require (verify-full to check the certificate) and "
                                       "turn its pg_hba.conf line into hostssl."))
    note = (f" {hidden} other session(s) hidden from this role (pg_stat_activity shows their address only to "
            "superusers and pg_read_all_stats): not checked." if hidden else "")
    if hidden:
        out.append(Finding("security.ssl", Severity.INFO, f"{hidden} session(s) could not be checked for SSL",
                           detail=note.strip(), value=hidden,
                           skipped=f"{PARTIAL}: {hidden} session(s) of other roles hidden from this role",
                           remediation="GRANT pg_read_all_stats TO <monitoring role>;"))
    if not any(f.severity.rank >= 1 for f in out):
        out.append(Finding("security.ssl", Severity.OK, f"ssl is {ssl}; every visible non-local connection uses it",
                           detail=f"{len(seen)} client connection(s) checked."))
    return out


SSL = register(Check(
    id="security.ssl",
    description="ssl off on a server that listens beyond loopback, and client connections from non-local "
                "addresses without SSL (pg_stat_ssl); sessions this role cannot see are said, not assumed fine.",
    data=ssl_data, judge=judge_ssl, queries=("security/ssl",), runbooks=RUNBOOKS))


# ---------------------------------------------------------------- security.hba
HOST_TYPES = ("host", "hostssl", "hostnossl", "hostgssenc", "hostnogssenc")


def hba(ctx: CheckContext):
    if not readable(ctx, "pg_catalog.pg_hba_file_rules"):  # the view and the function behind it
        raise SkipCheck(f"{PARTIAL}: pg_hba_file_rules is readable only by superusers; GRANT SELECT ON "
                        "pg_hba_file_rules TO <monitoring role> (and EXECUTE ON FUNCTION pg_hba_file_rules()) to "
                        "check it")
    return ctx.db.fetch("security/hba")


def judge_hba(df) -> list[Finding]:
    out = []
    for r in df.itertuples():
        if r.error is not None and r.error == r.error:
            out.append(Finding("security.hba", Severity.WARNING, f"pg_hba.conf line {r.line_number} does not parse",
                               detail=str(r.error), objects=[f"pg_hba.conf:{r.line_number}"],
                               remediation="Fix the line, then SELECT pg_reload_conf();"))
            continue
        if r.type not in HOST_TYPES or is_local(r.address):
            continue
        where = f"{r.type} {r.databases} {r.users} {r.address}{'/' + str(r.netmask) if r.netmask else ''}"
        sev = {"trust": Severity.CRITICAL, "password": Severity.WARNING, "md5": Severity.INFO}.get(r.auth_method)
        if sev is None:
            continue
        why = {"trust": "anyone who reaches the port logs in as any of these roles, with no password",
               "password": "the password crosses the network in clear text",
               "md5": "md5 is deprecated (PostgreSQL 18 warns); scram-sha-256 resists replay and stolen hashes"}
        out.append(Finding("security.hba", sev, f"pg_hba.conf line {r.line_number}: {r.auth_method} for {where}",
                           detail=why[r.auth_method] + ".", objects=[f"pg_hba.conf:{r.line_number}"],
                           remediation=f"Change line {r.line_number} to scram-sha-256 (hostssl where clients allow), "
                                       "then SELECT pg_reload_conf();"))
    return out or [Finding("security.hba", Severity.OK,
                           f"no trust, password or md5 rule for non-local addresses ({len(df)} rules)")]


HBA = register(Check(
    id="security.hba",
    description="pg_hba.conf rules (pg_hba_file_rules, when readable) for non-local addresses: trust is critical, "
                "password (clear text) a warning, md5 info; lines that do not parse.",
    data=hba, judge=judge_hba, queries=("security/hba",), runbooks=RUNBOOKS))
