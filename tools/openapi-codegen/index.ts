import openapiTS, { astToString, type OpenAPITSOptions } from "openapi-typescript";

/**
 * The TypeScript declarations openapi-typescript generates for an OpenAPI document (an
 * object, a URL or a file URL), as text: `paths`, `components`, `operations`.
 */
export async function generateTypes(source: URL | string | object, options: OpenAPITSOptions = {}): Promise<string> {
  const ast = await openapiTS(source as Parameters<typeof openapiTS>[0], options);
  return astToString(ast);
}
