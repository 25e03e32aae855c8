import { newId } from "../lib/ids.ts";

/** Per-request facts that hooks share: the request id and when it started. */
export interface RequestMeta {
  id: string;
  startedAt: number;
}

const metas = new WeakMap<Request, RequestMeta>();
const CLIENT_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/** A caller's own `x-request-id` is kept when it is short and plain, so logs line up across services. */
export function requestMeta(request: Request): RequestMeta {
  let meta = metas.get(request);
  if (!meta) {
    const given = request.headers.get("x-request-id");
    meta = { id: given && CLIENT_ID.test(given) ? given : newId("req"), startedAt: performance.now() };
    metas.set(request, meta);
  }
  return meta;
}
