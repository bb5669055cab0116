// @hey-api/openapi-ts configuration: the agent-runtime client, generated from the document
// named by $OPENAPI (default: the checked-in openapi/openapi.json) into ./client with the
// bundled fetch client. Run with `npm run generate`.
import { defineConfig } from '@hey-api/openapi-ts';

export default defineConfig({
  input: process.env.OPENAPI ?? '../../openapi/openapi.json',
  output: {
    path: './client',
    // Node ESM (tsconfig module NodeNext) needs explicit extensions on relative imports.
    module: { extension: '.js' },
  },
  plugins: ['@hey-api/client-fetch', '@hey-api/typescript', '@hey-api/sdk'],
  logs: { file: false },
});
