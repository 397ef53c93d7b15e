import { createOpenAI } from '@ai-sdk/openai';
import { Agent, run, setDefaultOpenAIClient, setOpenAIAPI, setTracingDisabled, tool } from '@openai/agents';
import { generateText, streamText } from 'ai';
import { sql } from 'drizzle-orm';
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { DEFAULT_TOOL_ARGS, expectedResponsesUsage, responsesReplyFor } from './fake-openrouter/server.js';
import { MODEL, useProxyEnv } from './helpers/proxy-env.js';

// Today's popular clients against the gateway's Responses API, through the real server and the
// fake (stateless) OpenRouter: the Vercel AI SDK's default OpenAI provider (which calls
// /v1/responses, not chat) and the OpenAI Agents SDK (Responses API by default).

const env = useProxyEnv();

const rowsOf = (r: unknown) => (Array.isArray(r) ? r : (r as { rows: any[] }).rows);
/** What the gateway sent upstream to /responses since the last reset, in order. */
const upstreamResponses = () => env.fake.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/responses'));
const responsesRecords = async () => {
  await env.gw.deps.usage.flush(10_000);
  return rowsOf(await env.database.db.execute(sql`select * from usage_records where route = 'responses' order by created_at`));
};

describe('Vercel AI SDK, default OpenAI provider (Responses API)', () => {
  const provider = () => createOpenAI({ baseURL: `${env.gw.url}/v1`, apiKey: env.key });

  it('generateText: the fake’s reply, via the upstream /responses, one ledger record', async () => {
    const before = (await responsesRecords()).length;
    const openai = provider();
    const result = await generateText({ model: openai(MODEL), prompt: 'Say hello to the AI SDK.' });

    const sent = upstreamResponses();
    expect(sent.length).toBe(1);
    expect(sent[0].path).toMatch(/\/api\/v1\/responses$/);
    expect(env.fake.requests.some((r) => r.path.endsWith('/chat/completions'))).toBe(false);
    const body = sent[0].body;
    expect(body.stream).not.toBe(true);
    const reply = responsesReplyFor(body);
    expect(reply).toBe('You said: Say hello to the AI SDK.');
    expect(result.text).toBe(reply);
    expect(result.finishReason).toBe('stop');
    const usage = expectedResponsesUsage(body);
    expect(result.usage.inputTokens).toBe(usage.input_tokens);
    expect(result.usage.outputTokens).toBe(usage.output_tokens);

    const rows = (await responsesRecords()).slice(before);
    expect(rows.length).toBe(1);
    expect([rows[0].status, rows[0].stream, rows[0].prompt_tokens, rows[0].completion_tokens]).toEqual([
      'ok',
      false,
      usage.input_tokens,
      usage.output_tokens,
    ]);
  });

  it('streamText: the whole textStream is the fake’s reply, via the upstream /responses, one ledger record', async () => {
    const before = (await responsesRecords()).length;
    const openai = provider();
    const result = streamText({ model: openai(MODEL), prompt: 'Stream hello to the AI SDK.' });
    let text = '';
    let parts = 0;
    for await (const delta of result.textStream) {
      text += delta;
      parts++;
    }
    expect(text.length).toBeGreaterThan(0);

    const sent = upstreamResponses();
    expect(sent.length).toBe(1);
    expect(sent[0].path).toMatch(/\/api\/v1\/responses$/);
    const body = sent[0].body;
    expect(body.stream).toBe(true);
    const reply = responsesReplyFor(body);
    expect(reply).toBe('You said: Stream hello to the AI SDK.');
    expect(text).toBe(reply);
    expect(parts).toBeGreaterThan(1); // it streamed in pieces, not one lump
    expect(await result.text).toBe(reply);
    expect(await result.finishReason).toBe('stop');
    const usage = expectedResponsesUsage(body);
    expect((await result.usage).inputTokens).toBe(usage.input_tokens);

    const rows = (await responsesRecords()).slice(before);
    expect(rows.length).toBe(1);
    expect([rows[0].status, rows[0].stream, rows[0].prompt_tokens, rows[0].completion_tokens]).toEqual([
      'ok',
      true,
      usage.input_tokens,
      usage.output_tokens,
    ]);
  });
});

describe('OpenAI Agents SDK (Responses API by default)', () => {
  // What the agent itself sent to the gateway's /v1/responses, to tell its way of chaining apart
  // from what the gateway then sent upstream.
  const agentSent: any[] = [];
  // The SDK's global settings, made at the start of each test: no tracing export (nothing phones
  // home), the Responses API (its default anyway), and the official client pointed at the gateway.
  const useGateway = () => {
    agentSent.length = 0;
    setTracingDisabled(true);
    setOpenAIAPI('responses');
    const recording: typeof fetch = async (input, init) => {
      if (String(input instanceof Request ? input.url : input).endsWith('/v1/responses') && typeof init?.body === 'string')
        agentSent.push(JSON.parse(init.body));
      return fetch(input, init);
    };
    setDefaultOpenAIClient(new OpenAI({ baseURL: `${env.gw.url}/v1`, apiKey: env.key, maxRetries: 0, timeout: 20_000, fetch: recording }));
  };

  /** An agent with one function tool; each call of the tool is kept. */
  const weatherAgent = () => {
    const calls: unknown[] = [];
    const getWeather = tool({
      name: 'get_weather',
      description: 'The weather in a city.',
      parameters: z.object({ city: z.string(), unit: z.string() }),
      execute: async (args) => {
        calls.push(args);
        return '{"temp":21}';
      },
    });
    const agent = new Agent({
      name: 'Weather',
      instructions: 'Answer with the weather.',
      model: MODEL,
      tools: [getWeather],
      // modelSettings.providerData is spread into the request body as it is, so the fake's control
      // rides along on every call: its first answer is a function call, and once the input ends with
      // a function_call_output it answers text.
      modelSettings: { providerData: { fake: { mode: 'tool_calls' } } },
    });
    return { agent, calls };
  };

  it('an agent with one function tool: the call, the tool run once, the final answer (full input resent)', async () => {
    useGateway();
    const before = (await responsesRecords()).length;
    const { agent, calls } = weatherAgent();
    const result = await run(agent, 'What is the weather in Paris?');

    expect(calls).toEqual([JSON.parse(DEFAULT_TOOL_ARGS)]);
    const sent = upstreamResponses();
    expect(sent.length).toBe(2);
    const [first, second] = sent.map((r) => r.body);
    expect(first.input).toEqual([{ role: 'user', content: 'What is the weather in Paris?' }]);
    expect(first.tools.map((t: any) => [t.type, t.name])).toEqual([['function', 'get_weather']]);
    // By default the Agents SDK manages the conversation itself: the second call carries the whole
    // input again (user message, the function_call, its function_call_output) and no
    // previous_response_id, conversation nor `store`. The gateway forwards that input as sent.
    expect(agentSent.length).toBe(2);
    for (const body of agentSent) {
      expect(body.previous_response_id).toBeUndefined();
      expect(body.conversation).toBeUndefined();
      expect(body.store).toBeUndefined();
    }
    expect(second.input).toEqual(agentSent[1].input);
    expect(second.previous_response_id).toBeUndefined();
    expect(second.conversation).toBeUndefined();
    expect(second.input.length).toBe(3);
    expect(second.input[0]).toEqual({ role: 'user', content: 'What is the weather in Paris?' });
    expect(second.input[1]).toMatchObject({ type: 'function_call', name: 'get_weather', arguments: DEFAULT_TOOL_ARGS });
    expect(second.input[2]).toMatchObject({ type: 'function_call_output', call_id: second.input[1].call_id, output: '{"temp":21}' });

    const reply = responsesReplyFor(second);
    expect(reply).toBe('You said: What is the weather in Paris?');
    expect(result.finalOutput).toBe(reply);
    // The gateway stored the last response (store defaults to true): it can be read back.
    const stored = await env.openai.responses.retrieve(result.lastResponseId!);
    expect(stored.output_text).toBe(reply);
    // One ledger record per model call.
    const rows = (await responsesRecords()).slice(before);
    expect(rows.map((r) => [r.status, r.stream])).toEqual([
      ['ok', false],
      ['ok', false],
    ]);
  });

  it('with previousResponseId the agent sends only the new items: the gateway rebuilds the chain for the stateless upstream', async () => {
    useGateway();
    const greeter = new Agent({ name: 'Greeter', instructions: 'Be brief.', model: MODEL });
    const hello = await run(greeter, 'My name is Ada.');
    expect(hello.finalOutput).toBe('You said: My name is Ada.');
    env.fake.reset();
    agentSent.length = 0;

    const { agent, calls } = weatherAgent();
    const result = await run(agent, 'What is the weather in Paris?', { previousResponseId: hello.lastResponseId });

    expect(calls).toEqual([JSON.parse(DEFAULT_TOOL_ARGS)]);
    const sent = upstreamResponses();
    expect(sent.length).toBe(2);
    const [first, second] = sent.map((r) => r.body);
    // Given previousResponseId the agent chains on the server: previous_response_id with just the new
    // user message, then previous_response_id (the function call's response) with just the
    // function_call_output. The upstream saw neither id, only the whole input the gateway rebuilt
    // from its own store.
    expect(agentSent.length).toBe(2);
    expect(agentSent[0].previous_response_id).toBe(hello.lastResponseId);
    expect(agentSent[0].input).toEqual([{ role: 'user', content: 'What is the weather in Paris?' }]);
    expect(agentSent[1].previous_response_id).toMatch(/^resp_/);
    expect(agentSent[1].previous_response_id).not.toBe(hello.lastResponseId);
    expect(agentSent[1].input.map((i: any) => i.type)).toEqual(['function_call_output']);
    for (const body of [first, second]) expect(body.previous_response_id).toBeUndefined();
    expect(first.input.map((i: any) => [i.type ?? 'message', i.role])).toEqual([
      ['message', 'user'],
      ['message', 'assistant'],
      ['message', 'user'],
    ]);
    expect(JSON.stringify(first.input[0])).toContain('My name is Ada.');
    expect(JSON.stringify(first.input[1])).toContain('You said: My name is Ada.');
    expect(JSON.stringify(first.input[2])).toContain('What is the weather in Paris?');
    expect(second.input.length).toBe(5);
    expect(second.input.slice(0, 3)).toEqual(first.input);
    expect(second.input[3]).toMatchObject({ type: 'function_call', name: 'get_weather', arguments: DEFAULT_TOOL_ARGS });
    expect(second.input[4]).toMatchObject({ type: 'function_call_output', call_id: second.input[3].call_id, output: '{"temp":21}' });
    expect(result.finalOutput).toBe(responsesReplyFor(second));
    expect(result.finalOutput).toBe('You said: What is the weather in Paris?');
  });

  it('with a conversationId from /v1/conversations: the gateway reads the conversation and appends each turn', async () => {
    useGateway();
    const conv = await env.openai.conversations.create({ items: [{ type: 'message', role: 'user', content: 'My name is Ada.' }] });
    const { agent, calls } = weatherAgent();
    const result = await run(agent, 'What is the weather in Paris?', { conversationId: conv.id });

    expect(calls).toEqual([JSON.parse(DEFAULT_TOOL_ARGS)]);
    const sent = upstreamResponses();
    expect(sent.length).toBe(2);
    const [first, second] = sent.map((r) => r.body);
    for (const body of [first, second]) expect(body.conversation).toBeUndefined();
    // The agent sent `conversation` with only the new user message, then only the
    // function_call_output; the gateway put the conversation's items before each.
    expect(agentSent.map((b) => [b.conversation, b.previous_response_id, b.input.map((i: any) => i.type ?? 'message')])).toEqual([
      [conv.id, undefined, ['message']],
      [conv.id, undefined, ['function_call_output']],
    ]);
    expect(first.input.length).toBe(2);
    expect(JSON.stringify(first.input[0])).toContain('My name is Ada.');
    expect(JSON.stringify(first.input[1])).toContain('What is the weather in Paris?');
    expect(second.input.length).toBe(4);
    expect(second.input[2]).toMatchObject({ type: 'function_call', name: 'get_weather', arguments: DEFAULT_TOOL_ARGS });
    expect(second.input[3]).toMatchObject({ type: 'function_call_output', call_id: second.input[2].call_id, output: '{"temp":21}' });
    expect(result.finalOutput).toBe(responsesReplyFor(second));

    const items = await env.openai.conversations.items.list(conv.id, { order: 'asc' });
    expect(items.data.map((i: any) => i.type)).toEqual(['message', 'message', 'function_call', 'function_call_output', 'message']);
  });
});
