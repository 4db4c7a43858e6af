/**
 * One train_vocab invocation, in LoopOS's order: (1) with --resume, read the checkpoint and take
 * the architecture from it; (2) the vocabulary; (3–4) the model and its weights; (5) without --data,
 * report and stop; (6) otherwise tokenize, train the stage, save. Returns the process exit code.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, realpathSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { isFolder } from "../base/files.ts";
import { folderGivenAsCheckpoint, type LoadedCheckpoint, readCheckpoint, type TrainingState, writeCheckpoint } from "../checkpoint/index.ts";
import { scanData } from "../data/fingerprint.ts";
import { type StoredTokens, storedTokens } from "../data/store.ts";
import { TokenWindows } from "../data/windows.ts";
import { UserError } from "../base/errors.ts";
import { flagName } from "../base/flags.ts";
import { GPT } from "../model/gpt.ts";
import { initParameters } from "../model/init.ts";
import { type Architecture, blockOf, LLAMA_NORM_EPS, parameterCount } from "../model/layout.ts";
import { hasBf16, setThreads } from "../native.ts";
import { count, int, num } from "../base/format.ts";
import { checkWritable, firstMissingFolder, refuseToReplace, removeEmptyFolders } from "../base/overwrite.ts";
import { listDataFiles, type Tokenizer } from "../tokenizer/index.ts";
import { acquireOutputLock } from "./lock.ts";
import { writeLossCurve } from "./loss_curve.ts";
import { type BudgetPace, budgetReserve, fitPlanToBudget, measureCosts } from "./budget.ts";
import { DivergedError, type SaveReason, trainStage, validationLoss } from "./loop.ts";
import { MetricsLog, readMetrics } from "./metrics.ts";
import { Optimizer } from "./optimizer.ts";
import { ARCHITECTURE_OPTIONS, type OptionName, type ResolvedOptions, type TrainOptions } from "./options.ts";
import { duration, TrainingProgress } from "./progress.ts";
import { architectureBlock, architectureDetails, arithmeticLine, trainingStateLine } from "./report.ts";
import { Xoshiro128 } from "../base/rng.ts";
import { SIGNAL_EXIT_CODES, StopSignals } from "./signals.ts";
import { decideStage, stageShape } from "./stage.ts";
import { identityOf, vocabularyForFreshRun, vocabularyForResume } from "./vocabulary.ts";

export const CHECKPOINT_NAME = "model_checkpoint.bin";
export const METRICS_NAME = "metrics.jsonl";
export const LOSS_CURVE_NAME = "loss_curve.svg";

export interface RunIo {
  log(message: string): void;
  warn(message: string): void;
}

const consoleIo: RunIo = { log: (m) => console.log(m), warn: (m) => console.error(m) };

/** Choices that are made per invocation, never in a config file. */
export interface RunChoices {
  /** Replace a checkpoint that is not the one resumed (the overwrite rule, src/overwrite.ts). */
  overwrite: boolean;
}

export async function runTraining(options: ResolvedOptions, io: RunIo = consoleIo, choices: RunChoices = { overwrite: false }): Promise<number> {
  const { values, given } = options;
  // A run folder given as --resume: said first, before its folder would be taken for the output.
  if (values.resume !== undefined && isFolder(values.resume)) throw folderGivenAsCheckpoint(values.resume);
  // A resume writes next to the checkpoint it read unless --output says otherwise, so that a resumed
  // model never lands on (and replaces) whatever sits in the default folder.
  const o: TrainOptions = values.resume !== undefined && !given.has("output") ? { ...values, output: dirname(values.resume) } : values;
  const resolved = { values: o, given };
  // One writer per output folder: taken before anything is written there, released however the run ends.
  const writes = o.data !== undefined || converting(resolved);
  const created = writes ? firstMissingFolder(o.output) : null;
  const lock = writes ? acquireOutputLock(o.output, io.warn) : null;
  let failed = true;
  try {
    const code = await runLocked(resolved, io, choices);
    failed = code !== 0;
    return code;
  } finally {
    lock?.release();
    // A run that failed before writing anything leaves no empty folder behind.
    if (failed && created) removeEmptyFolders(o.output, created);
  }
}

/** Resume without --data, with --output naming another folder: a converted copy is written there. */
function converting({ values: o, given }: ResolvedOptions): boolean {
  return o.data === undefined && o.resume !== undefined && given.has("output") && resolve(o.output) !== resolve(dirname(o.resume));
}

/**
 * The checks that need no slow work, made before any: the checkpoint this run would write must be
 * new, the one it resumed, or replaced by choice; a vocabulary it would build must be writable.
 */
function checkOutputs({ values: o, given }: ResolvedOptions, choices: RunChoices): void {
  if (o.data === undefined && !converting({ values: o, given })) return;
  const target = join(o.output, CHECKPOINT_NAME);
  const same = o.resume !== undefined && existsSync(target) && existsSync(o.resume) && realpathSync(target) === realpathSync(o.resume);
  if (!same) {
    const waysOut = o.resume
      ? [`leave out --output to write next to ${o.resume}`, "give another --output"]
      : [`continue it with \`${resumeCommand(target, o, given)}\``, "give another --output"];
    refuseToReplace(target, choices.overwrite, { what: "a checkpoint", flag: "--output", waysOut });
  }
  if (!o.resume && !existsSync(o.vocab)) checkWritable(o.vocab, "--vocab");
}

/** The command that continues a run: the checkpoint, and the flags that the stage's plan depends on. */
function resumeCommand(checkpoint: string, o: TrainOptions, given: Set<OptionName>): string {
  const parts = ["train_vocab", "resume", checkpoint];
  if (o.data !== undefined) parts.push("--data", o.data);
  parts.push("--vocab", o.vocab);
  if (given.has("valFraction")) parts.push("--val-fraction", String(o.valFraction));
  // The same validation text (another split would start a new stage) and the same token store (another
  // would tokenize everything again).
  if (o.valData !== undefined) parts.push("--val-data", o.valData);
  if (o.tokenCache !== undefined) parts.push("--token-cache", o.tokenCache);
  return parts.map(shellWord).join(" ");
}

/** Step and training loss of the last save before a divergence, and whether the loss had already run
 * away there: only a loss that is not finite stops a run, so that checkpoint may be far worse than the
 * best this run had. */
function savedLoss(metrics: MetricsLog, step: number): string {
  metrics.flush();
  const losses = readMetrics(metrics.path).flatMap((r) => ("loss" in r && r.step <= step ? [{ step: r.step, loss: r.loss }] : []));
  const at = losses.filter((r) => r.step === step).pop();
  if (!at) return `step ${step}`;
  const best = losses.reduce((a, b) => (b.loss < a.loss ? b : a));
  const worse = at.loss > 2 * best.loss
    ? `; the loss had been ${num(best.loss)} at step ${best.step}, so it was already running away: an earlier checkpoint or a lower --learning-rate may do better`
    : "";
  return `step ${step}, loss ${num(at.loss)}${worse}`;
}

function tooLong(seqLen: number, maxSeqLen: number): UserError {
  return new UserError(`--max-length ${seqLen} is longer than the checkpoint's max_seq_len ${maxSeqLen}, the longest context the model has. Use --max-length ${maxSeqLen} or less.`);
}

/** A word as a POSIX shell reads it back: bare when safe, else single-quoted. */
function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

async function runLocked({ values: o, given }: ResolvedOptions, io: RunIo, choices: RunChoices): Promise<number> {
  if (o.threads !== undefined) setThreads(o.threads);
  checkOutputs({ values: o, given }, choices);

  // (1) the checkpoint decides the architecture
  let loaded: LoadedCheckpoint | null = null;
  if (o.resume) {
    loaded = readCheckpoint(o.resume);
    io.log(architectureBlock(loaded.arch));
    io.log(architectureDetails(loaded.arch));
    // Said before the data is read and tokenized, which can take minutes.
    if (given.has("maxLength") && o.maxLength > loaded.arch.max_seq_len) throw tooLong(o.maxLength, loaded.arch.max_seq_len);
    const ignored = ARCHITECTURE_OPTIONS.filter((n) => given.has(n));
    if (ignored.length > 0) {
      io.warn(`Warning: ${ignored.map(flagName).join(", ")} ignored with --resume: the architecture comes from the checkpoint.`);
    }
  } else if (!o.data) {
    throw new UserError("--data is required (a text file, or a folder of them) unless --resume names a checkpoint to load.");
  }

  // The data is checked (and listed) before a vocabulary is built from it.
  // The run's own outputs never become its training data (an output folder inside the data folder).
  const files = o.data ? listDataFiles(o.data, io.warn, { exclude: [o.output, o.vocab] }) : [];

  // (2) the vocabulary
  const tokenizer = loaded
    ? vocabularyForResume(loaded, o.vocab, o.resume!)
    : vocabularyForFreshRun({
        vocabPath: o.vocab, data: o.data!, vocabSize: o.vocabSize, vocabSizeGiven: given.has("vocabSize"),
        minFrequency: o.minFrequency, log: io.log, files,
      });

  // (5) no data: load, verify, report; a converted copy when --output names another folder
  if (!o.data) {
    const ckpt = loaded!;
    io.log(trainingStateLine(ckpt.training, ckpt.format));
    io.log(`Checkpoint verified: ${ckpt.format === "lopos" ? "LOPOS v1 (no checksum in that format)" : `checksum ${ckpt.checksum.value} ok`}, ${count(parameterCount(ckpt.arch), "parameter")}`);
    if (given.has("output") && resolve(o.output) !== resolve(dirname(o.resume!))) {
      const out = join(o.output, CHECKPOINT_NAME);
      mkdirSync(o.output, { recursive: true });
      writeCheckpoint(out, { arch: ckpt.arch, tokenizer: ckpt.tokenizer ?? identityOf(tokenizer), training: ckpt.training, params: ckpt.params, adam: ckpt.adam });
      io.log(`Wrote ${out} (train-vocab checkpoint${ckpt.format === "lopos" ? ", converted from LOPOS v1" : ""})`);
    }
    io.log("No training data provided - model loaded but not trained");
    return 0;
  }

  // (6) data, model, stage
  mkdirSync(o.output, { recursive: true });
  const scanned = scanData(files);
  const dataFp = scanned.fingerprint;
  const tokens = storedTokens(scanned.files, tokenizer, o.tokenCache ?? o.output, io.log);
  io.log(`Data: ${count(tokens.tokens, "token")} from ${count(files.length, "file")} (${storeLine(tokens, files.length)})`);
  noteOldCaches(o.output, io);

  const previous: TrainingState | null = loaded?.training ?? null;
  const shape = stageShape(o, given, previous);
  const arch: Architecture = loaded?.arch ?? freshArchitecture(o, given, tokenizer.vocabSize, shape.seqLen);
  if (shape.seqLen < 8) {
    io.warn(`Note: --max-length ${shape.seqLen}: each token is predicted from at most ${count(shape.seqLen - 1, "token")} before it, and ${loaded ? "the model keeps its context of" : "the model's context is"} ${arch.max_seq_len}; text models learn little from windows this short (the default is 256).`);
  }
  if (shape.seqLen > arch.max_seq_len) {
    throw tooLong(shape.seqLen, arch.max_seq_len);
  }
  // With --val-data the held-out text is that file, so all of --data trains unless --val-fraction says otherwise.
  const windows = new TokenWindows(tokens, shape.seqLen, o.valData !== undefined && !given.has("valFraction") ? 0 : o.valFraction);
  const valWindows = o.valData !== undefined ? validationWindows(o.valData, tokenizer, o, shape.seqLen, io) : null;
  if (shape.batchSize > windows.trainCount) {
    // A batch larger than the data would only reserve memory that no step uses.
    io.log(`Note: --batch-size ${shape.batchSize} is more than the ${count(windows.trainCount, "training window")}; each step takes all of them (one step per epoch).`);
    shape.batchSize = windows.trainCount;
  }
  const stepsPerEpoch = Math.ceil(windows.trainCount / shape.batchSize);
  const initRng = Xoshiro128.fromSeed(o.seed);
  const params = loaded ? loaded.params : initParameters(arch, initRng);
  const precision = o.precision === "auto" ? (hasBf16() ? "bf16" : "fp32") : o.precision;
  const decision = decideStage({ previous, options: o, given, dataFingerprint: dataFp, stepsPerEpoch, shape, rngState: initRng.serialize(), precision, dModel: arch.d_model });
  const state = decision.state;

  const model = new GPT(arch, params, { precision: state.plan.precision ?? "fp32" });
  const optimizerKind = state.plan.optimizer ?? "adamw";
  const optimizer = new Optimizer(arch, loaded?.adam ?? null, { kind: optimizerKind, precision: state.plan.precision ?? "fp32" });
  // A switch of optimizer changes what m holds for the hidden matrices: they start afresh.
  if (!decision.continued && previous && (previous.plan.optimizer ?? "adamw") !== optimizerKind) optimizer.restartHiddenMoments();
  const validate = () =>
    valWindows
      ? validationLoss(model, valWindows, state.plan.batch_size, state.plan.seq_len, 0, valWindows.count)
      : validationLoss(model, windows, state.plan.batch_size, state.plan.seq_len);
  const budget = state.plan.time_budget_s;
  let pace: BudgetPace | null = null;
  if (!decision.continued && budget !== undefined) {
    const costs = measureCosts(model, arch, windows, state.plan);
    const v = valWindows ?? { count: windows.valCount };
    const inputs = {
      secondsLeft: budget - process.uptime(), budgetSeconds: budget, costs,
      valBatches: Math.ceil(v.count / state.plan.batch_size), evalEvery: o.evalEvery, saveEvery: o.saveEvery,
      warmupSteps: given.has("warmupSteps") ? o.warmupSteps : undefined, decayFraction: o.decayFraction,
    };
    pace = { deadline: budget, reserve: budgetReserve(inputs), maxSteps: state.plan.total_steps, decayFraction: o.decayFraction };
    const cap = state.plan.total_steps;
    state.plan = fitPlanToBudget(state.plan, inputs);
    state.history!.at(-1)!.epochs = state.plan.epochs;
    // Fitting never lengthens the stage: when --epochs is the shorter limit, the run ends before the budget.
    const capped = state.plan.total_steps === cap && cap > 1;
    io.log(
      `Time budget ${duration(budget)}: ${count(state.plan.total_steps, "step")} ` +
        (capped ? `(all of --epochs ${state.plan.epochs}: the budget has room for them, and the run ends when they do) ` : "fit ") +
        `(${num(costs.stepSeconds, 3)} s a step, measured; startup so far ${num(process.uptime(), 2)} s)`,
    );
  }
  const plan = state.plan;
  if (!decision.continued && given.has("warmupSteps") && o.warmupSteps! > plan.total_steps) {
    io.log(`Note: --warmup-steps ${o.warmupSteps} is longer than this stage's ${count(plan.total_steps, "step")}; the learning rate warms up over all of them and never decays.`);
  }
  if (decision.continued && plan.precision === "bf16" && !hasBf16()) {
    io.warn("Warning: this stage trained in bf16, but this CPU has no AVX512_BF16: it continues in fp32, so it is no longer bit-exact with a run that was never stopped.");
  }
  io.log(modelLine(arch));
  io.log(
    `Windows: ${int(windows.trainCount)} for training, ` +
      (valWindows ? `${int(valWindows.count)} from ${o.valData} for validation` : `${int(windows.valCount)} held out for validation`) +
      ` (${count(plan.seq_len, "token")} each)`,
  );
  io.log(arithmeticLine(plan.precision ?? "fp32", hasBf16(), !decision.continued && o.precision === "auto" && (!previous || given.has("precision"))));
  if (previous) io.log(trainingStateLine(previous, loaded!.format));
  if (decision.notContinuedBecause) io.log(`Not continuing the checkpoint's interrupted stage ${previous!.stage}: ${decision.notContinuedBecause}.`);
  io.log(
    decision.continued
      ? `Continuing stage ${state.stage} at epoch ${state.epoch + 1}/${plan.epochs}, step ${state.step_in_epoch}/${plan.steps_per_epoch} (global step ${int(state.global_step)})`
      : `Stage ${state.stage}: ${count(plan.epochs, "epoch")} × ${count(plan.steps_per_epoch, "step")} (batch ${plan.batch_size} × ${plan.seq_len}), ` +
          `peak lr ${num(plan.peak_lr)}, warmup ${count(plan.warmup_steps, "step")}, ` +
          (plan.schedule === "wsd"
            ? `then stable, decaying linearly over the last ${count(plan.decay_steps ?? 0, "step")} to ${num(plan.min_lr)}`
            : `cosine to ${num(plan.min_lr)}`) +
          (plan.optimizer === "muon" ? ", Muon for the hidden matrices and AdamW for the rest" : ", AdamW") +
          (loaded?.adam ? ", optimizer state carried over" : ""),
  );

  const checkpointPath = join(o.output, CHECKPOINT_NAME);
  const metrics = new MetricsLog(join(o.output, METRICS_NAME));
  prepareMetrics(metrics, loaded, o.resume, state.global_step);
  // The curve shows this run's history from the start (a replaced run's curve never lingers), and is
  // redrawn at every save but --save-every's (whose redraw would read the whole log every few steps).
  const curve = join(o.output, LOSS_CURVE_NAME);
  let logged = readMetrics(metrics.path); // the log as of the last drawing
  const drawCurve = () => {
    metrics.flush();
    logged = readMetrics(metrics.path);
    writeLossCurve(curve, logged);
  };
  writeLossCurve(curve, logged);
  const progress = new TrainingProgress(o.logEvery);
  let lastSave: { step: number; path: string } | null = null;
  const identity = identityOf(tokenizer);
  const save = (reason: SaveReason) => {
    writeCheckpoint(checkpointPath, { arch, tokenizer: identity, training: state, params: model.params, adam: { m: optimizer.m, v: optimizer.v } });
    lastSave = { step: state.global_step, path: checkpointPath };
    if (reason === "periodic") return;
    drawCurve();
    progress.log(`Saved ${checkpointPath} (step ${state.global_step}, ${reason})`);
  };
  const signals = new StopSignals((sig) => progress.log(`${sig}: finishing this step, then saving (send it again to quit at once)`));
  signals.install();
  let stop;
  try {
    stop = await trainStage({
      model, optimizer, windows, state, maxSteps: o.maxSteps ?? null, saveEvery: o.saveEvery, progress, metrics, save,
      stopRequested: () => signals.signal, validate, evalEvery: o.evalEvery, pace,
      onEpochEnd: (epoch, valLoss, steps) => {
        // An epoch's end was just saved, and the curve drawn from the log: its last loss is read there.
        const last = logged.filter((r) => r.step === state.global_step && "loss" in r).pop();
        // The stage's length (fitted to a budget, say) may end inside its last epoch.
        const part = steps < plan.steps_per_epoch ? ` (${int(steps)} of its ${int(plan.steps_per_epoch)} steps: the stage ends there)` : "";
        progress.log(
          `Epoch ${epoch + 1}/${plan.epochs} done${part}: step ${state.global_step}` +
            (last && "loss" in last ? `, loss ${last.loss.toFixed(4)}` : "") +
            (valLoss !== null ? `, val loss ${valLoss.toFixed(4)}` : ""),
        );
      },
    });
  } catch (err) {
    if (!(err instanceof DivergedError)) throw err;
    progress.clear();
    const saved = lastSave as { step: number; path: string } | null;
    const kept = saved
      ? `The last checkpoint saved is ${saved.path} (${savedLoss(metrics, saved.step)}).`
      : o.resume
        ? `Nothing was saved in this run; ${o.resume} is unchanged.`
        : "No checkpoint had been saved yet.";
    throw new UserError(
      `Training stopped at step ${err.step}: ${err.what.replace(/ at step \d+$/, "")} (not finite). Nothing from this step was applied. ${kept}\n` +
        `Try a lower --learning-rate (now ${num(plan.peak_lr)}; e.g. ${num(plan.peak_lr / 10)}) or a smaller --grad-clip.`,
    );
  } finally {
    metrics.flush();
    signals.remove();
    progress.clear();
  }

  const resumeHint = resumeCommand(checkpointPath, o, given);
  if (stop === "signal") {
    io.log(`Interrupted by ${signals.signal}: saved ${checkpointPath} at step ${state.global_step}. Continue with: ${resumeHint}`);
    return SIGNAL_EXIT_CODES[signals.signal!] ?? 1;
  }
  if (stop === "max-steps") {
    io.log(`Stopped after --max-steps ${o.maxSteps}: saved ${checkpointPath} at step ${state.global_step} (stage ${state.stage}, epoch ${state.epoch + 1}/${plan.epochs}). Continue with: ${resumeHint}`);
    return 0;
  }
  io.log(`Training complete: stage ${state.stage}, global step ${state.global_step}. Checkpoint: ${checkpointPath}`);
  return signals.signal ? (SIGNAL_EXIT_CODES[signals.signal] ?? 1) : 0;
}

/**
 * metrics.jsonl: a fresh run starts it empty; a resume keeps what came before its checkpoint's step,
 * from the checkpoint's folder (copied there when training into another one).
 */
function prepareMetrics(metrics: MetricsLog, loaded: LoadedCheckpoint | null, resumePath: string | undefined, step: number): void {
  if (!loaded || !resumePath) {
    metrics.open(0, true);
    return;
  }
  const source = join(dirname(resumePath), METRICS_NAME);
  if (resolve(source) !== resolve(metrics.path)) {
    // Into another folder: the history is the checkpoint's, never what the folder held before (the
    // log of a model --overwrite replaced).
    if (!existsSync(source)) return metrics.open(0, true);
    copyFileSync(source, metrics.path);
  }
  metrics.open(step, false);
}

export type { Tokenizer };

/** --val-data: its text, tokenized (and stored) like --data, as windows that are all for validation. */
function validationWindows(path: string, tokenizer: Tokenizer, o: TrainOptions, seqLen: number, io: RunIo): TokenWindows {
  const files = listDataFiles(path, io.warn, { exclude: [o.output, o.vocab] });
  const tokens = storedTokens(scanData(files, "--val-data").files, tokenizer, o.tokenCache ?? o.output, io.log, "--val-data");
  return new TokenWindows(tokens, seqLen, 0);
}

/** Where the ids came from, for the Data line (with the tokenizing rate when there was enough text to time). */
function storeLine({ tokenized, index, tokenizedBytes, rate }: StoredTokens, files: number): string {
  if (tokenized === 0) return `cached ids ${index}`;
  const speed = tokenizedBytes >= 1e7 ? `, ${num(rate / 1e6, 3)} MB/s` : "";
  return tokenized === files ? `tokenized; ids cached in ${index}${speed}` : `tokenized ${tokenized} of ${count(files, "file")}, the others' ids already stored (by an earlier run, or for a file with the same text); ids in ${index}${speed}`;
}

/** Token caches of earlier versions (one file of 4-byte ids per data set) are no longer read: say so once. */
function noteOldCaches(dir: string, io: RunIo): void {
  let old: string[] = [];
  try {
    old = readdirSync(dir).filter((n) => /^tokens-[0-9a-f]{16}\.bin$/.test(n));
  } catch {
    return;
  }
  if (old.length === 0) return;
  const bytes = old.reduce((s, n) => s + statSync(join(dir, n)).size, 0);
  io.log(`Note: ${old.join(", ")} in ${dir}: token cache of an earlier version, no longer read (the ids are in the token store now); delete it to free ${num(bytes / 1e6, 3)} MB.`);
}

/** A fresh run's architecture from the flags. GPT-2's has exactly the fields it always had (no
 * block key), so its checkpoints keep their bytes; without attention biases it is LoopOS's block. */
function freshArchitecture(o: TrainOptions, given: Set<OptionName>, vocabSize: number, seqLen: number): Architecture {
  const common = {
    d_model: o.dModel, num_heads: o.numHeads, num_layers: o.numLayers, d_ff: o.dFf,
    vocab_size: vocabSize, max_seq_len: seqLen, tied_embeddings: o.tieEmbeddings,
  };
  if (o.arch === "gpt2") {
    if (given.has("ropeTheta")) throw new UserError(`--rope-theta ${o.ropeTheta}: only --arch llama has rotary positions (GPT-2 learns its positions).`);
    return { ...common, attention_bias: o.attentionBias };
  }
  if (given.has("attentionBias") && o.attentionBias) {
    throw new UserError("--attention-bias true: a Llama block has no biases; attention biases go with --arch gpt2.");
  }
  const head = o.dModel / o.numHeads;
  if (head % 2 !== 0) {
    throw new UserError(`--arch llama: rotary positions turn channel pairs, so the head size must be even; --d-model ${o.dModel} / --num-heads ${o.numHeads} = ${head}.`);
  }
  return { ...common, attention_bias: false, block: "llama", rope_theta: o.ropeTheta, norm_eps: LLAMA_NORM_EPS };
}

function modelLine(arch: Architecture): string {
  const llama = blockOf(arch) === "llama";
  return (
    `Model: ${count(parameterCount(arch), "parameter")} (${llama ? "llama: " : ""}d_model ${arch.d_model}, num_heads ${arch.num_heads}, ` +
    `num_layers ${arch.num_layers}, d_ff ${arch.d_ff}${llama ? " (SwiGLU)" : ""}, vocab_size ${arch.vocab_size}, max_seq_len ${arch.max_seq_len}` +
    (llama ? `, rope_theta ${num(arch.rope_theta!)}` : "") +
    (llama || !arch.tied_embeddings ? `, LM head ${arch.tied_embeddings ? "tied" : "untied"}` : "") +
    ")"
  );
}
