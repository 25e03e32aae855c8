/** A data source's placement in a fleet: its jobs run only on nodes carrying all these labels. */
export interface RunOn {
  labels: Record<string, string>;
}

/** Does a node with `nodeLabels` (config `node.labels`) satisfy `runOn`? Every label present, with an equal value; null: any node. */
export function runsOn(runOn: RunOn | null | undefined, nodeLabels: Record<string, string>): boolean {
  if (!runOn) return true;
  return Object.entries(runOn.labels).every(([key, value]) => Object.hasOwn(nodeLabels, key) && nodeLabels[key] === value);
}
