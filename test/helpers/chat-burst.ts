/**
 * Sends `n` chat requests (every other one streamed) to a gateway, 25 at a time, reading each
 * answer to its end; throws on the first answer that is not 200. Bounded by `n`.
 */
export async function sendChatBurst(baseUrl: string, key: string, n: number, model = 'openai/gpt-4o-mini'): Promise<void> {
  for (let i = 0; i < n; i += 25) {
    await Promise.all(
      Array.from({ length: Math.min(25, n - i) }, async (_, j) => {
        const res = await fetch(`${baseUrl}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model, stream: (i + j) % 2 === 0, messages: [{ role: 'user', content: `request ${i + j}` }] }),
        });
        await res.text();
        if (res.status !== 200) throw new Error(`request ${i + j} answered ${res.status}`);
      }),
    );
  }
}
