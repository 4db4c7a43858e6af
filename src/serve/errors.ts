/** Errors as the OpenAI API writes them: `{"error":{"message","type","param","code"}}` with an HTTP status. */

export type ErrorType = "invalid_request_error" | "rate_limit_error" | "server_error";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: ErrorType = "invalid_request_error",
    readonly param: string | null = null,
    readonly code: string | null = null,
    /** Extra response headers (Allow for 405, Retry-After for 429). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export function errorBody(message: string, type: ErrorType, param: string | null, code: string | null): string {
  return JSON.stringify({ error: { message, type, param, code } });
}

export function errorResponse(err: ApiError): Response {
  return new Response(errorBody(err.message, err.type, err.param, err.code), {
    status: err.status,
    headers: { "content-type": "application/json", ...err.headers },
  });
}

export const badRequest = (message: string, param: string | null = null, code: string | null = null) =>
  new ApiError(400, message, "invalid_request_error", param, code);
