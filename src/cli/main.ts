/** The cac program: global options, command registration, and the one place errors are printed. */
import { cac, type CAC, type Command } from "cac";
import pc from "picocolors";
import { UserError } from "../base/errors.ts";
import { flagName, givenTwice, kebab } from "../base/flags.ts";
import { registerDoctor, versionLine } from "./doctor.ts";
import { suggestCommand, suggestOption } from "./suggest.ts";

export type Register = (cli: CAC) => void;

/** Each command module adds its commands here (one line each). */
async function registrations(): Promise<Register[]> {
  const list: Register[] = [registerDoctor];
  // command modules (keep one import per line):
  list.push((await import("./tokenizer.ts")).registerTokenizer);
  list.push((await import("./generate.ts")).registerGenerate);
  list.push((await import("./train.ts")).registerTrain);
  list.push((await import("./demo.ts")).registerDemo);
  list.push((await import("./inspect.ts")).registerInspect);
  list.push((await import("./export.ts")).registerExport);
  list.push((await import("./import.ts")).registerImport);
  list.push((await import("./eval.ts")).registerEval);
  list.push((await import("./serve.ts")).registerServe);
  list.push((await import("./dashboard.ts")).registerDashboard);
  return list;
}

export async function runCli(argv: string[]): Promise<void> {
  const cli = cac("train_vocab");
  for (const register of await registrations()) register(cli);
  cli.help();
  cli.option("-v, --version", "Show the version, CPU features, chosen ISA level and threads");
  try {
    const parsed = cli.parse(negativeValues(argv), { run: false });
    if (parsed.options.version && !parsed.options.help) {
      console.log(await versionLine());
      return;
    }
    const command = cli.matchedCommand;
    if (!parsed.options.help) {
      // The bare command trains, so it takes any word: a mistyped command name lands there, and
      // its options would be judged as training options.
      if ((!command || command.isDefaultCommand) && parsed.args.length > 0) throw unknownCommand(String(parsed.args[0]), cli);
      if (!command && argv.length <= 2) {
        cli.outputHelp();
        return;
      }
      if (command) {
        // Before cac's own check, which takes `--no-echo=false` for an unknown `--echo`.
        refuseSwitchValues([command, cli.globalCommand], argv);
        command.checkUnknownOptions();
        refuseRepeatedFlags(parsed.options);
        if (!command.isDefaultCommand) refuseExtraArguments(command, parsed.args);
      }
    }
    await cli.runMatchedCommand();
  } catch (err) {
    process.exitCode = reportError(err, cli);
  }
}

/** Print an error the way users should see it; returns the exit code. */
export function reportError(err: unknown, cli?: CAC): number {
  if (err instanceof UserError) {
    console.error(`${pc.red("error:")} ${err.message}`);
    return 2;
  }
  if (err instanceof Error && err.name === "CACError") {
    let message = err.message;
    const unknown = /Unknown option `([^`]+)`/.exec(message);
    if (unknown) {
      // cac reports the camelCased name; show it as it was typed (--lerning-rate, not --lerningRate).
      const typed = kebab(unknown[1]!);
      message = message.replace(unknown[0], `Unknown option \`${typed}\``);
      const hint = cli ? suggestOption(typed, knownOptions(cli)) : null;
      if (hint) message += ` — did you mean \`${hint}\`?`;
    }
    console.error(`${pc.red("error:")} ${message}\nRun \`train_vocab --help\` for the options.`);
    return 2;
  }
  console.error(err instanceof Error ? err.stack ?? err.message : String(err));
  return 1;
}

function unknownCommand(name: string, cli: CAC): UserError {
  const names = cli.commands.filter((c) => !c.isDefaultCommand).flatMap((c) => [c.name, ...c.aliasNames]);
  const hint = suggestCommand(name, names);
  return new UserError(`Unknown command "${name}"${hint ? ` — did you mean \`${hint}\`?` : "."} Run \`train_vocab --help\` for the list of commands.`);
}

/** A flag given twice: mri keeps both values, and a command would silently use one of them. */
function refuseRepeatedFlags(options: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(options)) {
    if (key !== "--" && key !== "help" && key !== "version" && Array.isArray(value)) throw givenTwice(flagName(key), value);
  }
}

/** Words after a command beyond the arguments it takes: cac would drop them without a word, and
 * `generate run/model.bin` or `inspect a.bin b.bin` would quietly use another model or skip one. */
function refuseExtraArguments(command: Command, args: readonly string[]): void {
  if (command.args.some((a) => a.variadic) || args.length <= command.args.length) return;
  const extra = args[command.args.length]!;
  const takes = command.args.length === 0
    ? "takes no arguments, only options"
    : `takes ${command.args.map((a) => (a.required ? `<${a.value}>` : `[${a.value}]`)).join(" ")} and options`;
  throw new UserError(
    `Unexpected argument "${extra}": \`train_vocab ${command.name}\` ${takes}. A value with spaces needs quotes; run \`train_vocab ${command.name} --help\` for the options.`,
  );
}

/** `--json=false`, `--no-echo=false`, `--overwrite=yes`: a switch given a value, which cac would take
 * as on (or as an unknown option, or a word of its own); said, since `=false` reads as off. */
function refuseSwitchValues(commands: Command[], argv: string[]): void {
  const switches = new Set<string>();
  for (const c of commands) {
    for (const o of c.options) {
      if (/[<[]/.test(o.rawName)) continue;
      for (const n of o.names) {
        switches.add(kebab(n));
        if (o.negated) switches.add(`no-${kebab(n)}`);
      }
    }
  }
  for (const a of argv.slice(2)) {
    if (a === "--") return;
    const m = /^--([a-z][a-z0-9-]*)=/.exec(a);
    if (m && switches.has(m[1]!)) throw new UserError(`--${m[1]} is a switch and takes no value (got "${a}"): give --${m[1]} alone, or leave it out.`);
  }
}

/**
 * `--learning-rate -1`: the option parser would read "-1" as a flag of its own. A negative number
 * right after a long option is its value: pass it as `--learning-rate=-1`, so the option's check
 * says what is wrong with it. A lone `-` (stdin, as in `--prompt -`) is a value too.
 */
export function negativeValues(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    if (/^--[a-z][a-z-]*$/.test(a) && next !== undefined && (next === "-" || /^-(\d|\.\d|Infinity$|NaN$)/.test(next))) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

function knownOptions(cli: CAC): string[] {
  const names = new Set<string>();
  const commands = cli.matchedCommand ? [cli.matchedCommand, cli.globalCommand] : [...cli.commands, cli.globalCommand];
  for (const command of commands) {
    for (const option of command.options) for (const name of option.names) names.add(flagName(name));
  }
  return [...names];
}
