/**
 * Writes the REST API's OpenAPI document to docs/openapi.json: `npx tsx bin/write-openapi.ts`.
 * A test fails when the file and `openApiDocument` differ.
 */
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderOpenApiJson } from '../broker-fargate/src/api/openapi.ts';

const file = fileURLToPath(new URL('../docs/openapi.json', import.meta.url));
fs.writeFileSync(file, renderOpenApiJson());
console.log(`wrote ${file}`);
