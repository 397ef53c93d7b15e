// The model catalog served by GET /api/v1/models, in OpenRouter's shape.
// Prices are strings in USD per token, as OpenRouter sends them.

export interface FakeModel {
  id: string;
  canonical_slug: string;
  name: string;
  created: number;
  description: string;
  context_length: number;
  architecture: {
    modality: string;
    input_modalities: string[];
    output_modalities: string[];
    tokenizer: string;
  };
  pricing: {
    prompt: string;
    completion: string;
    request: string;
    image: string;
  };
  top_provider: {
    context_length: number;
    max_completion_tokens: number | null;
    is_moderated: boolean;
  };
  per_request_limits: null;
  supported_parameters: string[];
}

const CHAT_PARAMS = [
  'max_tokens',
  'temperature',
  'top_p',
  'stop',
  'frequency_penalty',
  'presence_penalty',
  'seed',
  'response_format',
  'tools',
  'tool_choice',
];

function model(
  id: string,
  name: string,
  contextLength: number,
  maxCompletion: number | null,
  prompt: string,
  completion: string,
  kind: 'chat' | 'embedding' = 'chat',
): FakeModel {
  const chat = kind === 'chat';
  return {
    id,
    canonical_slug: id,
    name,
    created: 1_721_260_800,
    description: `Fake ${name} served by the fake OpenRouter.`,
    context_length: contextLength,
    architecture: {
      modality: chat ? 'text->text' : 'text->embeddings',
      input_modalities: ['text'],
      output_modalities: [chat ? 'text' : 'embeddings'],
      tokenizer: id.startsWith('anthropic/') ? 'Claude' : 'GPT',
    },
    pricing: { prompt, completion, request: '0', image: '0' },
    top_provider: {
      context_length: contextLength,
      max_completion_tokens: maxCompletion,
      is_moderated: false,
    },
    per_request_limits: null,
    supported_parameters: chat ? CHAT_PARAMS : [],
  };
}

export const FAKE_MODELS: FakeModel[] = [
  model('openai/gpt-4o-mini', 'OpenAI: GPT-4o-mini', 128_000, 16_384, '0.00000015', '0.0000006'),
  model('anthropic/claude-3.5-haiku', 'Anthropic: Claude 3.5 Haiku', 200_000, 8_192, '0.0000008', '0.000004'),
  // A tiny context window so gateway tests can exercise context trimming cheaply.
  model('fake/small-600', 'Fake: Small 600', 600, 200, '0.0000001', '0.0000004'),
  // OpenRouter lists variable-priced models (its auto router, for one) with "-1" prices: no price.
  model('fake/unpriced', 'Fake: Unpriced', 32_000, 4_096, '-1', '-1'),
  model('openai/text-embedding-3-small', 'OpenAI: Text Embedding 3 Small', 8_192, null, '0.00000002', '0', 'embedding'),
  model('fake/concept-embed', 'Fake: concept embeddings (related words share a dimension)', 8_192, null, '0.00000002', '0', 'embedding'),
];

export function findModel(id: unknown): FakeModel | undefined {
  return FAKE_MODELS.find((m) => m.id === id);
}
