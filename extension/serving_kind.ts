/**
 * Which engine serves an endpoint the user types in Choose Model: SGLang answers GET /get_model_info (a server) or
 * GET /workers (its gateway), which vLLM does not have (404). The model setting then names it `sglang+http://…`,
 * the address the engine scores through SGLang's native /generate (server/scoring/sglang.ts). Plain, without
 * vscode, so that it can be tested alone.
 */

/** 'sglang' or 'vllm' as the server says; undefined when it cannot tell (no answer in time, 401, another status). */
export type ServingKind = 'sglang' | 'vllm';

/** The setting's value for `endpoint` served by `kind`: the sglang+ prefix, one per setting, or the address as typed. */
export function modelSetting(endpoint: string, kind: ServingKind): string {
  const bare = endpoint.trim().replace(/^sglang\+/i, '');
  return kind === 'sglang' ? `sglang+${bare.replace(/\/+$/, '').replace(/\/v1$/, '')}` : bare;
}

/** Asks the server at `endpoint` (http(s)://host:port[/v1]) what it is, within `timeoutMs`. No key is sent. */
export async function detectServingKind(endpoint: string, timeoutMs = 3000): Promise<ServingKind | undefined> {
  const root = endpoint.trim().replace(/^sglang\+/i, '').replace(/\/+$/, '').replace(/\/v1$/, '');
  const get = async (path: string): Promise<{ status: number; body: unknown } | undefined> => {
    try {
      const answer = await fetch(`${root}${path}`, { signal: AbortSignal.timeout(timeoutMs), redirect: 'error' });
      const text = await answer.text();
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      return { status: answer.status, body };
    } catch {
      return undefined;
    }
  };
  const info = await get('/get_model_info');
  if (info?.status === 200 && typeof (info.body as { model_path?: unknown } | undefined)?.model_path === 'string') return 'sglang';
  const workers = await get('/workers');
  if (workers?.status === 200 && Array.isArray((workers.body as { workers?: unknown } | undefined)?.workers)) return 'sglang';
  // vLLM has neither (404) and lists its models at /v1/models.
  if (info?.status === 404) {
    const models = await get('/v1/models');
    if (models?.status === 200) return 'vllm';
  }
  return undefined;
}
