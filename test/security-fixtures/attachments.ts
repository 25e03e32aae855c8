import type { Fixtures } from "../helpers/security-suite.ts";
import { createAttachmentVia, createPolicyVia } from "../helpers/policies-seed.ts";

export const fixtures: Fixtures = {
  "/attachments/{id}": {
    params: async (h, org) => ({ id: (await createAttachmentVia(h, org, (await createPolicyVia(h, org)).id)).id }),
    body: () => ({ enabled: false }),
  },
};
