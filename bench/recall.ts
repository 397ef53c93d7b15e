// `npm run bench:recall`: recall of facts in a long thread. A generated thread of 400 turns (800
// messages) over 20 sessions of small talk, with 50 facts each stated once by the user; then, for
// each fact, a question asked later in other words. Recall = the share of questions whose forwarded
// messages carry the turn that stated the fact, within 1,000 and 4,000 tokens of memory budget,
// recency only (MEMORY_RETRIEVAL_SHARE 0) against retrieval (the default share). Run in process on
// the embedded default (PGlite), through memory.plan: the function a real request on a thread goes
// through (test/thread-state.test.ts proves the dry run, which uses it, matches real requests).
// Deterministic (seeded generator). Env: BENCH_QUICK=1 (RESULTS.md untouched).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configWith } from '../src/config.js';
import { openDeps } from '../src/deps.js';
import { messageTokens } from '../src/memory/context-plan.js';
import { createEmbedder } from '../src/memory/embedder.js';
import { createMemoryService } from '../src/memory/memory-service.js';
import { createThreadStore } from '../src/memory/thread-store.js';
import { createUpstreamClient } from '../src/proxy/upstream-client.js';
import { startFakeOpenRouter } from '../test/fake-openrouter/server.js';
import { messageHash, type ChatMessage } from '../src/memory/message-hash.js';
import { createLogger } from '../src/telemetry/logger.js';
import { commandLine, createRunGuard, gitRevision } from './bench-env.js';
import { machineInfo, saveResults } from './report.js';

const quick = process.env.BENCH_QUICK === '1';
const guard = createRunGuard('bench:recall', 5 * 60_000);
const TURNS = 400;
const SESSIONS = 20;
const BUDGETS = [1_000, 4_000];
const TARGETS: Record<number, number> = { 1_000: 0.6, 4_000: 0.75 };

// A small seeded generator (mulberry32), so every run builds the same thread.
function rng(seed: number) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = rng(42);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];

const NAMES = [
  'Maria',
  'Tomasz',
  'Aiko',
  'Dev',
  'Lena',
  'Omar',
  'Priya',
  'Jonas',
  'Chidi',
  'Sofia',
  'Mateo',
  'Ingrid',
  'Kwame',
  'Yara',
  'Felix',
  'Noor',
  'Hugo',
  'Mei',
  'Rafael',
  'Astrid',
];
const CITIES = ['Lisbon', 'Osaka', 'Nairobi', 'Montreal', 'Krakow', 'Valparaiso', 'Tbilisi', 'Hobart', 'Bergen', 'Cusco'];
const THINGS = ['tulips', 'sourdough', 'chess', 'kayaking', 'pottery', 'jazz', 'origami', 'bouldering', 'birdwatching', 'calligraphy'];

/** A fact the user states once, and a question about it asked later in other words. */
type Fact = { statement: string; question: string };
const CLIENTS = ['Acme', 'Globex', 'Initech', 'Umbrella', 'Hooli'];
const PLACES = ['cabin', 'office', 'garage', 'studio', 'boathouse'];
// Ten kinds of fact, five of each; every instance names its own person, client or place, so a
// question points at one fact only (a generic question would be answered by any of five).
const FACT_TEMPLATES: ((i: number) => Fact)[] = [
  (i) => ({
    statement: `My sister ${NAMES[i % 20]} moved to ${CITIES[i % 10]} last spring.`,
    question: `Which city does ${NAMES[i % 20]} live in now?`,
  }),
  (i) => ({
    statement: `The ${CLIENTS[(i >> 1) % 5]} project is codenamed ${['Falcon', 'Juniper', 'Quartz', 'Nimbus', 'Saffron'][i % 5]}.`,
    question: `Remind me, what codename did we give the ${CLIENTS[(i >> 1) % 5]} work?`,
  }),
  (i) => ({
    statement: `My neighbour ${NAMES[(i + 3) % 20]} has a ${['beagle', 'collie', 'poodle', 'husky', 'terrier'][i % 5]}.`,
    question: `What kind of dog does ${NAMES[(i + 3) % 20]} have?`,
  }),
  (i) => ({
    statement: `The contract with ${CLIENTS[i % 5]} Corp renews on the ${10 + (i % 18)}th of March.`,
    question: `When is the ${CLIENTS[i % 5]} renewal date?`,
  }),
  (i) => ({
    statement: `I have been learning ${THINGS[i % 10]} every Sunday morning.`,
    question: `How often do I practise ${THINGS[i % 10]}?`,
  }),
  (i) => ({
    statement: `${NAMES[(i + 7) % 20]} from accounting still owes me ${20 + i} euros.`,
    question: `How much money does ${NAMES[(i + 7) % 20]} owe me?`,
  }),
  (i) => ({
    statement: `I'm allergic to ${['peanuts', 'shellfish', 'kiwi', 'sesame', 'penicillin'][i % 5]}, so keep that in mind.`,
    question: 'Is there anything I cannot eat or take?',
  }),
  (i) => ({
    statement: `My flight to ${CITIES[(i + 3) % 10]} leaves from gate ${String.fromCharCode(65 + (i % 6))}${i % 30}.`,
    question: `Which gate does my ${CITIES[(i + 3) % 10]} flight depart from?`,
  }),
  (i) => ({
    statement: `I keep the spare key to the ${PLACES[i % 5]} under the ${['blue planter', 'doormat', 'garden gnome', 'loose brick', 'mailbox'][i % 5]}.`,
    question: `Where is the ${PLACES[i % 5]} key hidden?`,
  }),
  (i) => ({
    statement: `${NAMES[(i + 11) % 20]}'s favourite band is ${['The Lumineers', 'Radiohead', 'Khruangbin', 'Fleetwood Mac', 'Björk'][i % 5]}.`,
    question: `Which band does ${NAMES[(i + 11) % 20]} like best?`,
  }),
];

const TOPICS = [
  'the weather',
  'lunch plans',
  'a code review',
  'the deployment',
  'the weekend',
  'coffee',
  'the quarterly numbers',
  'traffic',
  'a podcast',
  'the team offsite',
  'a bug in the parser',
  'the new laptop',
];
const filler = (): [string, string] => {
  const topic = pick(TOPICS);
  return [
    `Quick note about ${topic}: ${pick(['it went fine', 'not much to report', 'we should revisit it', 'nothing urgent'])}, ${pick(['thanks', 'as discussed', 'more tomorrow', 'no action needed'])}.`,
    `Understood, ${topic} ${pick(['sounds good', 'is noted', 'can wait', 'looks under control'])}. ${pick(['Anything else?', 'Let me know if that changes.', 'I will keep it in mind.', ''])}`.trim(),
  ];
};

function buildThread() {
  const facts: (Fact & { turn: number })[] = [];
  const factTurns = new Set<number>();
  while (factTurns.size < 50) factTurns.add(Math.floor(rand() * TURNS * 0.9));
  const sorted = [...factTurns].sort((a, b) => a - b);
  const messages: ChatMessage[] = [];
  for (let turn = 0; turn < TURNS; turn++) {
    if (turn % (TURNS / SESSIONS) === 0)
      messages.push(
        { role: 'user', content: `Good ${pick(['morning', 'afternoon', 'evening'])}, starting a new session.` },
        { role: 'assistant', content: 'Welcome back.' },
      );
    const k = sorted.indexOf(turn);
    if (k >= 0) {
      const fact = FACT_TEMPLATES[k % FACT_TEMPLATES.length](k);
      facts.push({ ...fact, turn });
      messages.push({ role: 'user', content: fact.statement }, { role: 'assistant', content: 'Got it, I will remember that.' });
    } else {
      const [u, a] = filler();
      messages.push({ role: 'user', content: u }, { role: 'assistant', content: a });
    }
  }
  return { messages, facts };
}

async function main() {
  const tmp = mkdtempSync(join(tmpdir(), 'cmg-bench-recall-'));
  guard.push(async () => rmSync(tmp, { recursive: true, force: true }));
  const logger = createLogger('silent');
  const config = configWith({ dataDir: join(tmp, 'data'), openrouterApiKey: undefined, logLevel: 'silent' });
  const deps = await openDeps(config, { logger });
  guard.push(() => deps.close());
  const recencyOnly = createMemoryService({
    store: deps.threads,
    catalog: deps.catalog,
    logger,
    dataDir: join(tmp, 'recency'),
    defaultMaxTokens: 16_000,
    redactEmails: false,
    retrievalShare: 0,
  });
  guard.push(() => recencyOnly.close(1_000));

  const workspaceId = (await deps.keys.createWorkspace('bench-recall')).id;
  const { messages, facts } = buildThread();
  const thread = 'recall-thread';
  // Hybrid: the fake upstream's concept embedder (related words share a dimension; no real model),
  // through the gateway's own embedding queue and fusion.
  const fake = await startFakeOpenRouter();
  guard.push(() => fake.close());
  const upstream = createUpstreamClient({
    baseUrl: fake.baseUrl,
    apiKey: 'sk-or-v1-fake',
    headersTimeoutMs: 30_000,
    idleTimeoutMs: 30_000,
    maxRetries: 0,
  });
  guard.push(() => upstream.close());
  const embedder = createEmbedder({
    db: deps.database.db,
    // As the gateway's own: PGlite has pgvector, and its search reads the `vec` column this fills.
    vectors: deps.database.vectors,
    upstream,
    model: 'fake/concept-embed',
    dimensions: 32,
    record: () => {},
    logger,
    now: Date.now,
  });
  guard.push(() => embedder.stop());
  const hybrid = createMemoryService({
    store: deps.threads,
    catalog: deps.catalog,
    logger,
    dataDir: join(tmp, 'hybrid'),
    defaultMaxTokens: 16_000,
    redactEmails: false,
    embedder,
  });
  guard.push(() => hybrid.close(1_000));
  await createThreadStore(deps.database.db, { embed: true }).appendItems(
    workspaceId,
    thread,
    messages.map((m) => ({
      kind: 'message',
      role: m.role,
      content: m.content,
      contentHash: messageHash(m),
      tokens: messageTokens(m),
      status: 'complete',
    })),
  );
  const totalTokens = messages.reduce((n, m) => n + messageTokens(m), 0);
  await embedder.idle();

  const found = (plan: { messages: ChatMessage[] }, statement: string) =>
    plan.messages.some((m) => typeof m.content === 'string' && m.content.includes(statement));
  const rows: string[] = [];
  const figures: Record<string, number> = {};
  for (const budget of BUDGETS) {
    for (const [label, memory] of [
      ['recency only', recencyOnly],
      ['retrieval', deps.memory],
      ['hybrid', hybrid],
    ] as const) {
      let hits = 0;
      for (const fact of facts) {
        const plan = await memory.plan({
          workspaceId,
          threadId: thread,
          body: { model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: fact.question }] },
          inject: true,
          maxTokens: budget,
        });
        if (found(plan, fact.statement)) hits++;
      }
      figures[`${label} ${budget}`] = hits / facts.length;
      console.log(`${label}, ${budget} tokens: ${hits}/${facts.length}`);
    }
    const r = figures[`retrieval ${budget}`];
    rows.push(
      `| ${budget.toLocaleString('en')} tokens | ${(figures[`recency only ${budget}`] * 100).toFixed(0)}% | ${(r * 100).toFixed(0)}% | ${(figures[`hybrid ${budget}`] * 100).toFixed(0)}% | ≥ ${TARGETS[budget] * 100}% | ${r >= TARGETS[budget] ? 'PASS' : '**FAIL**'} |`,
    );
  }
  const table = [
    '| Memory budget | Recency only | Lexical retrieval | Hybrid (lexical + fake concept vectors) | Target (lexical) | Result |',
    '| --- | ---: | ---: | ---: | --- | --- |',
    ...rows,
  ].join('\n');
  console.log(`\n${table}\n`);
  const body = [
    `- Date: ${new Date().toISOString()}`,
    `- Machine: ${machineInfo()}`,
    `- Gateway code: ${gitRevision()}; embedded PGlite, in process`,
    `- Command: \`${commandLine('bench:recall', ['BENCH_QUICK'])}\``,
    '',
    table,
    '',
    '### Notes',
    '',
    `- Thread: ${messages.length} messages (${TURNS} turns in ${SESSIONS} sessions of small talk about a dozen topics, ~${Math.round(totalTokens / 1000)}k tokens), generated from a fixed seed; 50 facts stated once each by the user, placed at random turns in the first 90% of the thread. Ten kinds of fact, five of each (a relative's city, a client project's codename, a neighbour's dog, a contract's renewal date, a hobby, a debt, an allergy, a flight gate, where a key is hidden, a friend's favourite band); every instance names its own person, client or place, so each question points at one fact. Questions use other words: most share a name with the fact (\`Which city does Maria live in now?\`), some only a word or a stem (\`renewal\`/\`renews\` share one; \`practise\`/\`learning\` do not), and the allergy question shares nothing lexical (\`Is there anything I cannot eat or take?\`): lexical retrieval cannot find those five; vector retrieval (issue 14, next) is for them.`,
    '- Each question is a memory-only request (just the question) planned by memory.plan with X-Memory-Max-Tokens at the budget; a hit is the fact-stating message among the forwarded messages (as injected history or as a retrieved line). Recency only: MEMORY_RETRIEVAL_SHARE 0; retrieval: the default share (0.3 of the budget after pinned items and the summary). The model is not in a catalog here, so its context is taken as 8,192 tokens: both budgets fit.',
    "- Hybrid: the same, with MEMORY_EMBEDDING_MODEL's path on: the thread's items embedded through the gateway's job queue by the fake upstream's `fake/concept-embed` (32 dimensions; related words such as eat/allergic/peanuts share one), each question embedded the same way, and the two rankings fused. The fake embedder is not a real model: this column shows the queue, the search and the fusion working, not what a real embedding model would recall.",
  ].join('\n');
  saveResults({ heading: 'Recall in a long thread (bench:recall)', body, quick });
  const ok = BUDGETS.every((b) => figures[`retrieval ${b}`] >= TARGETS[b]);
  if (!ok) process.exitCode = 1;
}

void guard.run(main);
