// An error the CLI reports as one line (what went wrong, and what to do), exiting with `code`.
export class CliError extends Error {
  readonly code: number;
  constructor(message: string, code = 1) {
    super(message);
    this.name = 'CliError';
    this.code = code;
  }
}
