// Forwarding and error responses shared by the gateway's routes.

/** The request to the proxy, unchanged but for its URL. */
export function forward(request: Request, target: URL, body?: ArrayBuffer): Promise<Response> {
  return fetch(target, {
    method: request.method,
    headers: request.headers,
    body: body ?? request.body,
    redirect: 'manual',
  });
}

/** An error in the proxy's shape, so the driver surfaces `message` (it parses every 400 as JSON). */
export function sqlError(status: number, message: string): Response {
  return Response.json({ message, code: '', severity: '' }, { status, headers: { 'Access-Control-Allow-Origin': '*' } });
}

