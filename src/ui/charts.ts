import uPlot from "uplot";
import { formatBytes } from "../lib/human.ts";
import { h } from "./dom.ts";

export interface Point {
  at: number;
  value: number;
}

/**
 * A sparkline of a few backups (size or duration): a figure with a text alternative that
 * says what the line shows, so the chart is not the only way to read it.
 */
export function sparkline(points: Point[], kind: "size" | "duration", label: string): HTMLElement {
  const fmt = (v: number) => (kind === "size" ? formatBytes(v) : `${v < 10 ? v.toFixed(1) : Math.round(v)} s`);
  const values = points.map((p) => p.value);
  const latest = values.at(-1);
  const words =
    latest === undefined
      ? `${label}: no successful backup yet`
      : `${label} of the last ${points.length} backup${points.length === 1 ? "" : "s"}: latest ${fmt(latest)}, from ${fmt(Math.min(...values))} to ${fmt(Math.max(...values))}`;
  const figure = h("figure", { class: `spark ${kind}`, role: "img", "aria-label": words, title: words });
  if (points.length < 2) {
    figure.append(h("span", { class: "spark-text", "aria-hidden": "true" }, latest === undefined ? "—" : fmt(latest)));
    return figure;
  }
  const stroke = kind === "size" ? "#0550ae" : "#8250df";
  new uPlot(
    {
      width: 120,
      height: 34,
      pxAlign: false,
      cursor: { show: false },
      legend: { show: false },
      select: { show: false, left: 0, top: 0, width: 0, height: 0 },
      scales: { x: { time: false } },
      axes: [{ show: false }, { show: false }],
      series: [{}, { stroke, width: 1.5, points: { show: true, size: 3 } }],
    },
    [points.map((p) => p.at / 1000), values],
    figure,
  );
  figure.append(h("span", { class: "spark-text", "aria-hidden": "true" }, latest === undefined ? "" : fmt(latest)));
  return figure;
}
