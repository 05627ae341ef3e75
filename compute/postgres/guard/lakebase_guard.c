/*
 * lakebase_guard: keep PostgreSQL 15's CREATEROLE from reaching the OS.
 *
 * In PG15 a CREATEROLE role may grant membership in any non-superuser role, including
 * pg_read_server_files, pg_write_server_files and pg_execute_server_program; the last one turns
 * `COPY ... TO PROGRAM` into a shell as the server's OS user. PG16 reworked CREATEROLE and Neon patches
 * its own Postgres; Debian's PG15 does neither, so this module (loaded via shared_preload_libraries)
 * enforces Lakebase's invariant instead: no role is a member of those three roles.
 *
 * Rather than parse every syntax that can add a membership (GRANT, CREATE ROLE ... IN ROLE / ROLE /
 * ADMIN, ALTER GROUP ... ADD USER, WITH ADMIN OPTION, ...), the hook lets the statement run and then
 * looks at pg_auth_members: if any member of those roles exists, it raises an ERROR, which rolls the
 * statement's effects back with its (sub)transaction. Superusers are not restricted.
 *
 * Second, and unrelated, job of the same library (one preloaded module per compute): the suspend notice. When the
 * compute host stops a compute cleanly (a suspend), it creates the file named by `lakebase.suspend_marker` before
 * the fast shutdown; the FATAL 57P01 each session then gets carries the detail the proxy looks for
 * (lib/compute-notices.ts), so that an idle client session stays open across the suspend, as on the pglite engine.
 * Any other 57P01 (pg_terminate_backend, a shutdown that is not a suspend) is left as PostgreSQL sends it.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_authid_d.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/catcache.h"
#include "utils/syscache.h"
#include "utils/elog.h"
#include "utils/guc.h"

#include <unistd.h>

PG_MODULE_MAGIC;

void		_PG_init(void);

/* Must equal COMPUTE_STOPPING_DETAIL in lib/compute-notices.ts. */
#define STOPPING_DETAIL "lakebase: the compute is stopping (endpoint suspended)"

static emit_log_hook_type prev_emit_log_hook = NULL;
static char *suspend_marker = NULL;

/* A session ended by a suspend's fast shutdown: say so in the FATAL's detail (see the header). */
static void
lakebase_emit_log(ErrorData *edata)
{
	if (edata->elevel == FATAL && edata->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN && edata->output_to_client &&
		edata->detail == NULL && suspend_marker != NULL && suspend_marker[0] != '\0' &&
		access(suspend_marker, F_OK) == 0)
		edata->detail = pstrdup(STOPPING_DETAIL);
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

static ProcessUtility_hook_type prev_ProcessUtility = NULL;

/* The predefined roles that reach the server's files or programs; reserved for superusers on Lakebase. */
static const struct
{
	Oid			oid;
	const char *name;
}			reserved_roles[] = {
	{ROLE_PG_READ_SERVER_FILES, "pg_read_server_files"},
	{ROLE_PG_WRITE_SERVER_FILES, "pg_write_server_files"},
	{ROLE_PG_EXECUTE_SERVER_PROGRAM, "pg_execute_server_program"},
};

/* Statements that can add a row to pg_auth_members. REVOKE (a GrantRoleStmt too) only removes rows. */
static bool
may_add_membership(Node *parsetree)
{
	switch (nodeTag(parsetree))
	{
		case T_GrantRoleStmt:
			return ((GrantRoleStmt *) parsetree)->is_grant;
		case T_CreateRoleStmt:
		case T_AlterRoleStmt:	/* covers ALTER GROUP ... ADD USER */
			return true;
		default:
			return false;
	}
}

/* Refuse (ERROR) if any role is now a member of a reserved role. */
static void
check_reserved_memberships(void)
{
	/* make the statement's own catalog changes visible to the syscache lookup below */
	CommandCounterIncrement();
	for (size_t i = 0; i < lengthof(reserved_roles); i++)
	{
		CatCList   *members = SearchSysCacheList1(AUTHMEMROLEMEM, ObjectIdGetDatum(reserved_roles[i].oid));
		int			n = members->n_members;

		ReleaseSysCacheList(members);
		if (n > 0)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to grant role \"%s\"", reserved_roles[i].name),
					 errhint("The roles pg_read_server_files, pg_write_server_files and "
							 "pg_execute_server_program are reserved on Lakebase.")));
	}
}

static void
lakebase_guard_ProcessUtility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
							  ProcessUtilityContext context, ParamListInfo params,
							  QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	/* decide before running: the check applies to whoever issued the statement */
	bool		check = !superuser() && may_add_membership(pstmt->utilityStmt);

	if (prev_ProcessUtility)
		prev_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);

	if (check)
		check_reserved_memberships();
}

void
_PG_init(void)
{
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = lakebase_guard_ProcessUtility;

	DefineCustomStringVariable("lakebase.suspend_marker",
							   "File whose existence marks a shutdown as a suspend (set by the compute host).",
							   NULL, &suspend_marker, "", PGC_POSTMASTER,
							   GUC_SUPERUSER_ONLY | GUC_NOT_IN_SAMPLE, NULL, NULL, NULL);
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = lakebase_emit_log;
}
