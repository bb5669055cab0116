// @hey-api/openapi-ts configuration: the agent-runtime client, generated from the document
// named by $OPENAPI (default: the checked-in openapi/openapi.json) into ./client with the
// bundled fetch client. Run with `npm run generate`.
//
// The parser patch types each event of a text/event-stream response as the document's
// `items` schema (RunEvent): hey-api types what its SSE reader yields (each parsed `data:`)
// by the response's `schema`, while schemathesis checks each SSE event object against that
// same `schema`, so the document keeps `items` for the events and this patch reads it.
import { defineConfig } from '@hey-api/openapi-ts';

export default defineConfig({
  input: process.env.OPENAPI ?? '../../openapi/openapi.json',
  output: {
    path: './client',
    module: { extension: '.js' },
  },
  parser: {
    patch: {
      operations: (_method, _path, operation) => {
        for (const response of Object.values(operation.responses ?? {})) {
          const media = (response as { content?: Record<string, { schema?: { items?: unknown } }> })
            .content?.['text/event-stream'];
          if (media?.schema?.items) media.schema = media.schema.items as typeof media.schema;
        }
      },
    },
  },
  plugins: ['@hey-api/client-fetch', '@hey-api/typescript', '@hey-api/sdk'],
  logs: { file: false },
});
