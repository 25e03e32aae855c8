import type { Fixtures } from "../helpers/security-suite.ts";
import { createPolicyVia } from "../helpers/policies-seed.ts";

export const fixtures: Fixtures = {
  "/backup-policies/{id}": {
    params: async (h, org) => ({ id: (await createPolicyVia(h, org)).id }),
    body: (_h, _params) => ({ retries: 3 }),
  },
};
