/**
 * Exit statuses of the tool itself. 125 is reserved for the tool's own failures
 * (usage, configuration that does not load, cannot start), as env(1) and
 * timeout(1) do, so it never collides with a script's own status.
 * The table is in docs/cli.md.
 */
export const EXIT_OK = 0;
/** Usage error, configuration load error, cannot start: nothing ran. */
export const EXIT_TOOL_FAILURE = 125;
/** The whole run was refused (a run-level hook denied it): nothing ran. Same code as a denied exec. */
export const EXIT_DENIED = 126;

/** An error meant for the user: printed as one line, exit status 125 unless told. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    message: string,
    readonly exitCode: number = EXIT_TOOL_FAILURE,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** commander helper for repeatable options. */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
