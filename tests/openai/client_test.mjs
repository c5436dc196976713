// The official `openai` npm package (4.x, pinned in package.json / package-lock.json) against a running
// `chunkwise serve --embeddings --api-key KEY`: what a real OpenAI client sends and parses must work.
//
//   node tests/openai/client_test.mjs --base-url http://127.0.0.1:PORT/v1 --api-key KEY --model ID \
//        --client-dir DIR      (DIR/node_modules/openai: tools/install-openai-client.sh installs it there)
//
// Prints one line per check; exits 0 when all pass, 1 with the failures listed (2: bad usage, or the package
// is missing). src/server/openai_client_test.cc starts the server on a free port and runs this script.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i];
    if (!key.startsWith('--') || i + 1 >= argv.length) {
      console.error(`usage: client_test.mjs --base-url URL --api-key KEY --model ID --client-dir DIR (at ${key})`);
      process.exit(2);
    }
    out[key.slice(2)] = argv[i + 1];
  }
  for (const k of ['base-url', 'api-key', 'model', 'client-dir']) {
    if (!out[k]) {
      console.error(`client_test.mjs: --${k} is required`);
      process.exit(2);
    }
  }
  return out;
}

const args = parseArgs(process.argv.slice(2));
let OpenAI;
try {
  // The package lives outside the repository: resolve it from the cache directory, not from here.
  const require = createRequire(path.join(path.resolve(args['client-dir']), 'package.json'));
  OpenAI = require('openai');
  OpenAI = OpenAI.default ?? OpenAI;
  // The package's "exports" do not list package.json: read it from its folder.
  const pkg = path.join(path.resolve(args['client-dir']), 'node_modules', 'openai', 'package.json');
  const version = JSON.parse(fs.readFileSync(pkg, 'utf8')).version;
  console.log(`openai ${version} from ${args['client-dir']}`);
} catch (e) {
  console.error(`client_test.mjs: cannot load the openai package from ${args['client-dir']}: ${e.message}`);
  process.exit(2);
}

const client = new OpenAI({ baseURL: args['base-url'], apiKey: args['api-key'], maxRetries: 0, timeout: 60_000 });
const model = args.model;
const failures = [];

function check(cond, what) {
  if (!cond) throw new Error(what);
}
function isCount(x) {
  return Number.isInteger(x) && x >= 0;
}
async function test(name, fn) {
  try {
    await fn();
    console.log(`ok   ${name}`);
  } catch (e) {
    failures.push(name);
    console.log(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
  }
}

const chatRequest = {
  model,
  messages: [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'w1 w2 w3' },
  ],
  max_tokens: 12,
  temperature: 0,
};
const completionRequest = { model, prompt: 'w1 w2 w3 w4', max_tokens: 12, temperature: 0 };

await test('models.list names the served model', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  check(ids.includes(model), `models: ${JSON.stringify(ids)}`);
});

let greedyChat = null;
await test('chat.completions.create: shape, usage, greedy twice equal', async () => {
  const a = await client.chat.completions.create(chatRequest);
  check(a.object === 'chat.completion', `object ${a.object}`);
  check(typeof a.id === 'string' && a.id.length > 0, `id ${a.id}`);
  check(a.model === model, `model ${a.model}`);
  check(Array.isArray(a.choices) && a.choices.length === 1, `choices ${JSON.stringify(a.choices)}`);
  const c = a.choices[0];
  check(c.index === 0, `index ${c.index}`);
  check(c.message.role === 'assistant', `role ${c.message.role}`);
  check(typeof c.message.content === 'string', `content ${JSON.stringify(c.message.content)}`);
  check(c.finish_reason === 'stop' || c.finish_reason === 'length', `finish_reason ${c.finish_reason}`);
  const u = a.usage;
  check(u && isCount(u.prompt_tokens) && u.prompt_tokens > 0, `usage ${JSON.stringify(u)}`);
  check(isCount(u.completion_tokens) && u.completion_tokens <= 12, `usage ${JSON.stringify(u)}`);
  check(u.total_tokens === u.prompt_tokens + u.completion_tokens, `usage ${JSON.stringify(u)}`);
  if (c.finish_reason === 'length') check(u.completion_tokens === 12, `length after ${u.completion_tokens} tokens`);
  const b = await client.chat.completions.create(chatRequest);
  check(b.choices[0].message.content === c.message.content,
        `greedy differs: ${JSON.stringify(c.message.content)} vs ${JSON.stringify(b.choices[0].message.content)}`);
  greedyChat = a;
  console.log(`     chat reply ${JSON.stringify(c.message.content)} (${c.finish_reason}, ${u.completion_tokens} tokens)`);
});

await test('chat.completions.create stream: deltas concatenate to the greedy content; usage chunk', async () => {
  check(greedyChat !== null, 'needs the non-streaming result');
  const stream = await client.chat.completions.create({ ...chatRequest, stream: true,
                                                        stream_options: { include_usage: true } });
  let text = '';
  let finish = null;
  let usage = null;
  let chunks = 0;
  let role = null;
  for await (const chunk of stream) {
    ++chunks;
    check(chunk.object === 'chat.completion.chunk', `object ${chunk.object}`);
    if (chunk.usage) usage = chunk.usage;
    if (chunk.choices.length === 0) continue;  // the usage chunk
    const ch = chunk.choices[0];
    if (ch.delta.role) role = ch.delta.role;
    if (typeof ch.delta.content === 'string') text += ch.delta.content;
    if (ch.finish_reason) {
      check(finish === null, 'two finish reasons');
      finish = ch.finish_reason;
    }
  }
  check(chunks >= 2, `${chunks} chunks`);
  check(role === 'assistant', `role ${role}`);
  check(text === greedyChat.choices[0].message.content,
        `streamed ${JSON.stringify(text)} != ${JSON.stringify(greedyChat.choices[0].message.content)}`);
  check(finish === greedyChat.choices[0].finish_reason, `finish_reason ${finish}`);
  check(usage && usage.completion_tokens === greedyChat.usage.completion_tokens &&
        usage.prompt_tokens === greedyChat.usage.prompt_tokens, `usage ${JSON.stringify(usage)}`);
});

await test('chat.completions.create stream without include_usage: no usage chunk', async () => {
  const stream = await client.chat.completions.create({ ...chatRequest, max_tokens: 3, stream: true });
  let finish = null;
  for await (const chunk of stream) {
    check(!chunk.usage, `usage ${JSON.stringify(chunk.usage)}`);
    check(chunk.choices.length === 1, `choices ${JSON.stringify(chunk.choices)}`);
    if (chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
  }
  check(finish === 'stop' || finish === 'length', `finish_reason ${finish}`);
});

await test('completions.create (legacy): shape, greedy, streamed text equal', async () => {
  const a = await client.completions.create(completionRequest);
  check(a.object === 'text_completion', `object ${a.object}`);
  check(a.choices.length === 1 && typeof a.choices[0].text === 'string', `choices ${JSON.stringify(a.choices)}`);
  check(['stop', 'length'].includes(a.choices[0].finish_reason), `finish_reason ${a.choices[0].finish_reason}`);
  check(a.usage.prompt_tokens > 0 && isCount(a.usage.completion_tokens), `usage ${JSON.stringify(a.usage)}`);
  check(a.choices[0].text.length > 0, 'an empty completion (the comparisons below would be vacuous)');
  console.log(`     completion ${JSON.stringify(a.choices[0].text)} (${a.choices[0].finish_reason})`);
  const b = await client.completions.create(completionRequest);
  check(b.choices[0].text === a.choices[0].text, 'greedy differs');
  const stream = await client.completions.create({ ...completionRequest, stream: true });
  let text = '';
  let finish = null;
  for await (const chunk of stream) {
    check(chunk.object === 'text_completion', `object ${chunk.object}`);
    text += chunk.choices[0].text ?? '';
    if (chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
  }
  check(text === a.choices[0].text, `streamed ${JSON.stringify(text)} != ${JSON.stringify(a.choices[0].text)}`);
  check(finish === a.choices[0].finish_reason, `finish_reason ${finish}`);
});

function checkVectors(res, n) {
  check(res.object === 'list', `object ${res.object}`);
  check(res.data.length === n, `${res.data.length} vectors, want ${n}`);
  let dim = -1;
  res.data.forEach((d, i) => {
    check(d.object === 'embedding' && d.index === i, `item ${i}: ${d.object} index ${d.index}`);
    const v = d.embedding;
    check(Array.isArray(v) && v.length > 0, `item ${i}: not a vector`);
    if (dim < 0) dim = v.length;
    check(v.length === dim, `item ${i}: length ${v.length}, item 0: ${dim}`);
    check(v.every(Number.isFinite), `item ${i}: a value is not finite`);
    const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    check(Math.abs(norm - 1) < 1e-3, `item ${i}: norm ${norm}, want 1 (L2-normalised)`);
  });
  check(res.usage && res.usage.prompt_tokens > 0, `usage ${JSON.stringify(res.usage)}`);
  return res.data.map((d) => d.embedding);
}

await test('embeddings.create: two inputs, float and the client\'s default base64 agree', async () => {
  // Without encoding_format the client asks for base64 and decodes it itself.
  const b64 = checkVectors(await client.embeddings.create({ model, input: ['w5 w6', 'w7'] }), 2);
  const floats = checkVectors(await client.embeddings.create({ model, input: ['w5 w6', 'w7'],
                                                               encoding_format: 'float' }), 2);
  for (let i = 0; i < 2; ++i)
    check(b64[i].every((x, k) => Math.abs(x - floats[i][k]) < 1e-6), `vector ${i}: base64 and float differ`);
  const one = checkVectors(await client.embeddings.create({ model, input: 'w7', encoding_format: 'float' }), 1);
  check(one[0].every((x, k) => Math.abs(x - floats[1][k]) < 1e-5), 'a single input differs from the same in a batch');
});

await test('a wrong API key raises AuthenticationError (401)', async () => {
  const bad = new OpenAI({ baseURL: args['base-url'], apiKey: 'wrong-' + args['api-key'], maxRetries: 0 });
  try {
    await bad.chat.completions.create(chatRequest);
  } catch (e) {
    check(e instanceof OpenAI.AuthenticationError, `raised ${e && e.constructor && e.constructor.name}: ${e}`);
    check(e.status === 401, `status ${e.status}`);
    check(e.error && e.error.type === 'authentication_error', `error ${JSON.stringify(e.error)}`);
    return;
  }
  throw new Error('no error raised');
});

await test('an unknown model raises NotFoundError (404)', async () => {
  for (const call of [() => client.chat.completions.create({ ...chatRequest, model: 'no-such-model' }),
                      () => client.completions.create({ ...completionRequest, model: 'no-such-model' })]) {
    try {
      await call();
    } catch (e) {
      check(e instanceof OpenAI.NotFoundError, `raised ${e && e.constructor && e.constructor.name}: ${e}`);
      check(e.status === 404, `status ${e.status}`);
      check(typeof e.message === 'string' && e.message.includes('no-such-model'), `message ${e.message}`);
      continue;
    }
    throw new Error('no error raised');
  }
});

await test('a bad request raises BadRequestError (400)', async () => {
  try {
    await client.chat.completions.create({ ...chatRequest, max_tokens: -5 });
  } catch (e) {
    check(e instanceof OpenAI.BadRequestError, `raised ${e && e.constructor && e.constructor.name}: ${e}`);
    check(e.status === 400, `status ${e.status}`);
    return;
  }
  throw new Error('no error raised');
});

if (failures.length > 0) {
  console.log(`${failures.length} check(s) failed: ${failures.join('; ')}`);
  process.exit(1);
}
console.log('all checks passed');
