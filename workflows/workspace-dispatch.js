export const meta = {
  name: 'workspace-dispatch',
  description: 'Run a validated dispatch plan: one worker per attempt in dependency order, each verdict from dispatch-kit check, every attempt in the ledger',
  whenToUse: 'The user asks to run or resume a dispatch-kit plan. args: {plan: "path/to/plan.yaml", wip: 2}',
  phases: [
    { title: 'Load', detail: 'validate the plan and read the ledger' },
    { title: 'Dispatch', detail: 'per attempt: start (claim, render, lint), worker, finish (check, record)' },
    { title: 'Report', detail: 'the completion report from the ledger' },
  ],
}

// The loop of the workspace-dispatch skill, run by the harness instead of by a model.
// This script cannot read files or run commands, so small "steward" agents run the
// dispatch-kit commands and hand back the JSON those commands print:
//   start:  `dispatch-kit attempt start` claims the next attempt in the ledger, renders
//           its prompt (the retry addendum with the last failure from attempt 2 on),
//           lints it and records the dispatch, all before the worker's agent() call
//           (workflow agents fire no PreToolUse hook, so the lint happens here);
//   finish: `dispatch-kit attempt finish` runs the exit criteria and records the verdict.
// The verdict comes only from the criteria: the worker's reply is never read for it.
// Every state lives in the ledger, so a new run after a kill carries on where the last
// one stopped and redoes nothing verified.

const input = typeof args === 'string' ? { plan: args } : (args || {})
if (typeof input.plan !== 'string' || input.plan === '') {
  throw new Error('workspace-dispatch needs args.plan: the path of a plan validated with `dispatch-kit plan validate`')
}
const WIP = Number.isInteger(Number(input.wip)) && Number(input.wip) > 0 ? Number(input.wip) : 2
const HOLDER = typeof input.holder === 'string' && input.holder ? input.holder : 'workflow:workspace-dispatch'
// The worker's agent type; null or '' uses the plain workflow subagent.
const WORKER = input.worker_agent === undefined ? 'dispatch-kit:dispatch-worker' : input.worker_agent
const LINT_AGENT = WORKER ? WORKER.split(':').pop() : 'dispatch-worker'

// A shell word: bare when it is plainly safe, else single-quoted.
function sh(text) {
  const word = String(text)
  if (/^[\w.\/:@%+=,-]+$/.test(word)) return word
  return "'" + word.split("'").join("'\\''") + "'"
}
const PLAN = sh(input.plan)
const BY = sh(HOLDER)

const LOAD_SCHEMA = {
  type: 'object',
  properties: {
    ok: { type: 'boolean' },
    error: { type: 'string' },
    tasks: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          state: { type: 'string' },
          depends_on: { type: 'array', items: { type: 'string' } },
          attempt: { type: 'integer' },
          max_attempts: { type: 'integer' },
        },
        required: ['id', 'state', 'depends_on'],
      },
    },
  },
  required: ['ok', 'tasks'],
}
const START_SCHEMA = {
  type: 'object',
  properties: {
    ok: { type: 'boolean' },
    state: { type: 'string' },
    attempt: { type: 'integer' },
    max_attempts: { type: 'integer' },
    reason: { type: 'string' },
    prompt: { type: 'string' },
  },
  required: ['ok', 'state', 'attempt', 'max_attempts', 'reason', 'prompt'],
}
const FINISH_SCHEMA = {
  type: 'object',
  properties: {
    passed: { type: 'boolean' },
    outcome: { type: 'string' },
    attempt: { type: 'integer' },
    max_attempts: { type: 'integer' },
    error: { type: 'string' },
    skipped: { type: 'array', items: { type: 'string' } },
  },
  required: ['passed', 'outcome', 'attempt', 'max_attempts', 'error', 'skipped'],
}
const REPORT_SCHEMA = {
  type: 'object',
  properties: { state: { type: 'string' }, report: { type: 'string' } },
  required: ['state', 'report'],
}

function steward(command, fields) {
  return [
    'You are a steward for a dispatch workflow. Run this one command with Bash, exactly as written:',
    '',
    command,
    '',
    fields,
    '',
    'Run nothing else, change no file and do no task yourself: the command does the work.',
  ].join('\n')
}

const loadPrompt = steward(
  `dispatch-kit plan validate ${PLAN} && dispatch-kit ledger init ${PLAN} && dispatch-kit ledger status --plan ${PLAN} --format json`,
  'If it exits non-zero, call StructuredOutput with ok false, error set to the last lines it printed and tasks empty. ' +
  'Otherwise call StructuredOutput with ok true and, for each entry of the "tasks" list in the JSON it printed, ' +
  'its id, state, depends_on, attempt and max_attempts, copied exactly.',
)
const startPrompt = (id) => steward(
  `dispatch-kit attempt start ${PLAN} --task ${sh(id)} --by ${BY} --agent ${sh(LINT_AGENT)}`,
  'It prints one JSON object. Call StructuredOutput with its ok, state, attempt, max_attempts, reason and prompt fields, ' +
  'copied exactly: prompt character for character.',
)
const finishPrompt = (id, note) => steward(
  `dispatch-kit attempt finish ${PLAN} --task ${sh(id)} --by ${BY}` + (note ? ` --note ${sh(note)}` : ''),
  'It runs the exit criteria, records the verdict and prints one JSON object. Call StructuredOutput with its passed, ' +
  'outcome, attempt, max_attempts, error and skipped fields, copied exactly. Do not judge, fix or rerun anything.',
)
const reportPrompt = steward(
  `dispatch-kit ledger status --plan ${PLAN} --format markdown && dispatch-kit ledger status --plan ${PLAN} --format json`,
  'Call StructuredOutput with report set to the Markdown it printed first, exactly, and state set to the "state" field of the JSON after it.',
)

// Calls to agent() that fail (a budget ceiling, a dead subagent) end the task's run, not the workflow.
async function ask(prompt, opts) {
  try {
    return await agent(prompt, opts)
  } catch (err) {
    log(`${opts.label}: ${err && err.message ? err.message : err}`)
    return null
  }
}

// ---------------------------------------------------------------- load

phase('Load')
const loaded = await ask(loadPrompt, { label: 'load-plan', phase: 'Load', schema: LOAD_SCHEMA, effort: 'low' })
if (!loaded || !loaded.ok) {
  const why = loaded ? loaded.error : 'the steward returned nothing'
  log(`plan not loaded: ${why}`)
  return { state: 'not-started', error: why }
}

const TERMINAL = ['verified', 'failed', 'skipped']
const tasks = loaded.tasks
const byId = {}
const outcome = {} // id -> {state, ...}: what this run saw or did
for (const t of tasks) {
  byId[t.id] = t
  if (TERMINAL.includes(t.state)) outcome[t.id] = { state: t.state, resumed: true }
}
const done = tasks.filter((t) => outcome[t.id]).map((t) => `${t.id} ${t.state}`)
if (done.length) log(`from the ledger, not redone: ${done.join(', ')}`)

// ---------------------------------------------------------------- one task

async function runTask(id) {
  const limit = byId[id].max_attempts || 4
  let note = ''
  for (let round = 0; round < limit; round++) {
    const start = await ask(startPrompt(id), { label: `start-${id}`, phase: 'Dispatch', schema: START_SCHEMA, effort: 'low' })
    if (!start) return { state: 'error', reason: 'the start steward returned nothing' }
    if (!start.ok) {
      // Finished meanwhile (verified, failed, skipped), held by another holder, blocked, or a prompt that fails the lint.
      return { state: start.state, reason: start.reason }
    }
    if (!start.prompt.includes('`' + id + '`')) {
      return { state: 'error', reason: 'the start steward returned a prompt for another task' }
    }
    log(`${id}: attempt ${start.attempt}/${start.max_attempts} dispatched`)
    const opts = { label: `worker-${id}`, phase: 'Dispatch' }
    if (WORKER) opts.agentType = WORKER
    const reply = await ask(start.prompt, opts)
    note = reply === null ? 'the worker agent ended without a reply' : ''
    const verdict = await ask(finishPrompt(id, note), { label: `check-${id}`, phase: 'Dispatch', schema: FINISH_SCHEMA, effort: 'low' })
    if (!verdict) return { state: 'error', reason: 'the finish steward returned nothing' }
    log(`${id}: attempt ${verdict.attempt}/${verdict.max_attempts} ${verdict.outcome}`)
    if (verdict.outcome === 'verified' || verdict.outcome === 'already-verified') {
      return { state: 'verified', attempts: verdict.attempt }
    }
    if (verdict.outcome === 'failed') {
      return { state: 'failed', attempts: verdict.attempt, error: verdict.error, skipped: verdict.skipped }
    }
    if (verdict.outcome !== 'retry') return { state: 'error', reason: `finish: ${verdict.outcome} ${verdict.error}` }
  }
  return { state: 'error', reason: `no verdict after ${limit} attempts` }
}

// ---------------------------------------------------------------- the loop

phase('Dispatch')
const running = {} // id -> promise of [id, result]
for (;;) {
  for (const t of tasks) {
    if (outcome[t.id] || running[t.id]) continue
    const deps = t.depends_on.map((d) => [d, outcome[d]])
    const blocked = deps.find(([, o]) => o && o.state !== 'verified')
    if (blocked) {
      outcome[t.id] = { state: 'skipped', reason: `${blocked[0]} ${blocked[1].state}` }
      log(`${t.id}: skipped (${blocked[0]} ${blocked[1].state})`)
      continue
    }
    if (deps.every(([, o]) => o && o.state === 'verified') && Object.keys(running).length < WIP) {
      running[t.id] = runTask(t.id).then((r) => [t.id, r])
    }
  }
  const inFlight = Object.values(running)
  if (inFlight.length === 0) break
  const [id, result] = await Promise.race(inFlight)
  delete running[id]
  outcome[id] = result
}
for (const t of tasks) {
  if (!outcome[t.id]) outcome[t.id] = { state: 'not-started', reason: 'its dependencies never finished' }
}

// ---------------------------------------------------------------- report

phase('Report')
const report = await ask(reportPrompt, { label: 'report', phase: 'Report', schema: REPORT_SCHEMA, effort: 'low' })
return {
  state: report ? report.state : 'unknown',
  tasks: outcome,
  report: report ? report.report : 'the report steward returned nothing: run `dispatch-kit ledger status --plan PLAN`',
}
