// What the `lakebase lake ...` commands share: the subcommand word (none: list), the branch's API path from
// --branch, and usage errors said the same way (the usage, exit 2) before anything is asked of the API.
import type { Api } from '../api.ts';
import { CliError } from '../errors.ts';

/** --branch, which every lake command takes (parseArgs' option shape). */
export const BRANCH_OPTION = { branch: { type: 'string' } } as const;

/** The subcommand and its arguments: `lake tables` and `lake tables --branch dev` list. */
export function subcommand(args: string[]): { sub: string; rest: string[] } {
  const [first, ...rest] = args;
  if (first === undefined || first.startsWith('-')) return { sub: 'list', rest: args };
  return { sub: first, rest };
}

/** The positionals, exactly `n` of them (at least `n` with `more`), else the usage (exit 2). */
export function positionalsOf(positionals: string[], n: number, usage: string, more = false): string[] {
  if (positionals.length < n || (!more && positionals.length > n)) throw usageError(usage);
  return positionals;
}

/** A usage error: what was wrong (if said), then the usage; exit 2 as every command's bad usage. */
export function usageError(usage: string, problem?: string): CliError {
  return new CliError(`${problem ? `${problem}\n` : ''}usage:\n${usage}`, 2);
}

/** A value from a closed set (--format, --refresh), else a usage error naming the choices. */
export function oneOf<T extends string>(flag: string, value: string | undefined, choices: readonly T[], usage: string): T | undefined {
  if (value === undefined || (choices as readonly string[]).includes(value)) return value as T | undefined;
  throw usageError(usage, `--${flag} must be ${choices.join(' or ')}, not ${JSON.stringify(value)}`);
}

/** `/projects/P/branches/B` for --branch (an id or a name; none: the project's default branch). */
export async function branchPath(api: Api, ref: string | undefined): Promise<string> {
  const pid = await api.projectId();
  const b = await api.branch(pid, ref);
  return `/projects/${encodeURIComponent(pid)}/branches/${encodeURIComponent(b.id)}`;
}

/** An id in a path: as given, but never a path of its own. */
export const idPath = (id: string): string => encodeURIComponent(id);
