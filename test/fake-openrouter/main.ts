// Standalone fake OpenRouter: `npm run fake-openrouter` (port from FAKE_PORT, default 8787).

import { startFakeOpenRouter } from './server.js';

const port = Number(process.env.FAKE_PORT ?? 8787);
const apiKey = 'sk-or-v1-fake';
const fake = await startFakeOpenRouter({ port, apiKey });
console.log(`fake OpenRouter listening at ${fake.baseUrl} (API key: ${apiKey})`);

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await fake.close();
  process.exit(0);
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
