/**
 * Flag names and the one-value rule, for the command line and the config file alike. cac camelCases
 * option names (--learning-rate arrives as learningRate) and mri hands over whatever it guessed: a
 * number, a string, true for a bare flag, an array when the flag was repeated.
 */
import { UserError } from "./errors.ts";

/** learningRate → learning-rate: an option as the user typed it. */
export function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** learning-rate or learning_rate → learningRate: a flag or config key as an option key. */
export function camel(key: string): string {
  return key.replace(/[-_]([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** The flag of an option key: learningRate → --learning-rate. */
export function flagName(key: string): string {
  return `--${kebab(key)}`;
}

/** A flag's one value: given twice, mri hands over an array, and keeping either would be a guess. */
export function once(flag: string, value: unknown): unknown {
  if (Array.isArray(value)) throw givenTwice(flag, value);
  return value;
}

export function givenTwice(flag: string, values: unknown[]): UserError {
  const times = values.length === 2 ? "twice" : `${values.length} times`;
  const list = values.every((v) => v === true) ? "" : ` (${values.map((v) => (v === true ? "no value" : String(v))).join(", ")})`;
  return new UserError(`${flag} given ${times}${list}; give it once.`);
}
