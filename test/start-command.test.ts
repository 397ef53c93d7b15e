import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ROOT, startNodeFlags } from './helpers/processes.js';

describe('how the gateway is started', () => {
  it('npm start runs the compiled gateway with heap limits, and the Docker image runs it the same way', () => {
    const flags = startNodeFlags();
    expect(flags).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^--max-old-space-size=\d+$/),
        expect.stringMatching(/^--max-semi-space-size=\d+$/),
        expect.stringMatching(/^--min-semi-space-size=\d+$/),
      ]),
    );
    const cmd = /^CMD (\[.*\])$/m.exec(readFileSync(`${ROOT}Dockerfile`, 'utf8'));
    expect(cmd).not.toBeNull();
    expect(JSON.parse(cmd![1])).toEqual(['node', ...flags, 'dist/main.js']);
  });
});
