/** Bad input from a user: the CLI prints the message (which names the file or flag and a hint)
 * without a stack and exits 2. Anything else thrown is a bug. */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UserError";
  }
}
