// The text of `lakebase help`: every command and option in one place.
export const HELP = `lakebase: an open lakebase (serverless Postgres on branchable storage in S3/R2)

Usage:
  lakebase start [--dir DIR] [--storage-port N] [--compute-port N] [--api-port N] [--http-port N] [--tcp-port N]
                 [--auto-ports] [--engine pglite|postgres] [--compute-hosts N] [--storage-nodes M] [--quiet | --verbose]
      Runs every service on this machine, supervised (a service that dies is restarted); --compute-hosts N
      (LAKEBASE_COMPUTE_HOSTS) runs N compute hosts (compute-host-1, ...), each registered with the control plane;
      --storage-nodes M (LAKEBASE_STORAGE_NODES) runs M storage nodes over the one bucket, projects spread over them.
      State (object store folder, storage node disk) lives in DIR (default .lakebase, or LAKEBASE_DIR).
      With LAKEBASE_S3_BUCKET (and LAKEBASE_S3_ENDPOINT, ...) the object store is that bucket instead.
      Writes DIR/local.json with the addresses of what it started. Ctrl-C stops everything cleanly.
      Each service logs to DIR/logs/<service>.log; the terminal shows progress, restarts and errors
      (--verbose: every log line too). Commands run while it starts wait for it (up to 60 s).

  lakebase logs [SERVICE] [--lines N] [--follow]                    the services' logs (default: the last 100
                                                                    lines of each, merged, after its name)

  lakebase projects list | create [--name N] | get ID | delete ID
  lakebase branches list
  lakebase branches create [--name N] [--parent BRANCH] [--at LSN|TIMESTAMP] [--no-endpoint] [--read-only]
  lakebase branches delete BRANCH
  lakebase branches reset BRANCH [--preserve-under-name N]          to its parent's head
  lakebase branches restore BRANCH --source BRANCH [--at LSN|TIMESTAMP] [--preserve-under-name N]
  lakebase branches checkpoint BRANCH NAME                          name the branch's current state
  lakebase branches checkpoints BRANCH
  lakebase branches rewind BRANCH NAME                              back to a checkpoint, in O(1)
  lakebase endpoints list | start ENDPOINT_ID | suspend ENDPOINT_ID
  lakebase roles list | create NAME | delete NAME | reset-password NAME   [--branch BRANCH]
  lakebase connection-string [BRANCH] [--role R] [--database D] [--pooled]
  lakebase sql "STATEMENTS" [BRANCH] [--role R] [--database D]       several, separated by ";": each one's result
  lakebase dump [BRANCH] [--role R] [--database D] [--file F]       pg_dump (plain SQL) of the branch's database
  lakebase lake tables list | create SCHEMA.TABLE | get ID | delete ID            [--branch BRANCH]
                                                                    a table kept in Iceberg in the bucket as it changes
  lakebase lake synced-tables list | get ID | refresh ID [--refresh MODE] | delete ID   [--branch BRANCH]
  lakebase lake synced-tables create --source URI --target SCHEMA.TABLE [--refresh snapshot|incremental]
                                     [--database D] [--branch BRANCH]
                                                                    Iceberg or Parquet in the bucket, loaded into a
                                                                    read-only Postgres table
  lakebase lake exports list | get ID                                             [--branch BRANCH]
  lakebase lake exports create TABLE [TABLE...] [--at LSN|TIMESTAMP] [--format iceberg|parquet] [--database D]
                               [--wait] [--branch BRANCH]           tables at a point, written to the bucket (--wait:
                                                                    until done, progress on stderr, exit 1 if it fails)
  lakebase admin hosts | nodes                                      the machines: compute hosts (state, engines,
                                                                    memory, endpoints) and storage nodes (operator)
  lakebase admin drain NODE [--to NODE]                             move every project off a storage node
  lakebase mcp                                                      the MCP server for agents, over stdio
                                                                    (over HTTP: the API's /mcp, same key)
  lakebase help

  BRANCH is a branch id or name (default: the project's default branch). LSNs look like 0/16B3748.

Options of the API commands, before or after the command (flag, then environment variable, then DIR/local.json
from \`lakebase start\`):
  --api-url URL     LAKEBASE_API_URL      the API, e.g. http://127.0.0.1:9871/api/v2
  --api-key KEY     LAKEBASE_API_KEY      its Bearer key
  --project ID      LAKEBASE_PROJECT_ID   the project (default: local.json's, or the only one)
  --dir DIR         LAKEBASE_DIR          where local.json is (.lakebase)
  --json                                  JSON output for scripts (default: a table)
                    LAKEBASE_PG_HOST, LAKEBASE_PG_PORT   the proxy's Postgres address, for \`sql\`

Environment of start: LAKEBASE_DIR, LAKEBASE_STORAGE_PORT (9870), LAKEBASE_COMPUTE_PORT (9872),
LAKEBASE_API_PORT (9871), LAKEBASE_PROXY_HTTP_PORT (4444), LAKEBASE_PROXY_TCP_PORT (5432), LAKEBASE_AUTO_PORTS=1,
LAKEBASE_DURABILITY (local | object-store), LAKEBASE_S3_* (see docs/storage-node-api.md), LAKEBASE_LOG_LEVEL (info,
the services' log files), LAKEBASE_VERBOSE=1 (as --verbose), LAKEBASE_ENGINE (pglite).`;
