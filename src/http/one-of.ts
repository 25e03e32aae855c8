import { t } from "elysia";
import type { SchemaOptions, TLiteral, TUnion } from "@sinclair/typebox";

type Literals<T extends readonly string[]> = { -readonly [K in keyof T]: TLiteral<T[K]> };

/**
 * A closed set of strings: validated as exactly one of them, documented as an `enum`
 * (which a generated client types as the union of the literals).
 */
export function oneOf<const T extends readonly [string, ...string[]]>(values: T, options?: SchemaOptions): TUnion<Literals<T>> {
  return t.Union(
    values.map((v) => t.Literal(v)),
    options,
  ) as unknown as TUnion<Literals<T>>;
}
