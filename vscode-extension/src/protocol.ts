/**
 * livefix's custom DAP requests and events, and the LSP messages the extension exchanges.
 *
 * Mirrors `livefix/protocol.py` (the single source of truth) once; keep the two in step.
 * Types only, plus the names: imported by every other module, never by the VS Code host.
 */

// -- request and event names ---------------------------------------------------

export const APPLY = 'livefix/apply';
export const ROLLBACK = 'livefix/rollback';
export const HISTORY = 'livefix/history';
export const CAPTURE_FRAMES = 'livefix/captureFrames';
export const STATUS = 'livefix/status';
export const RELOAD = 'livefix/reload';
/** Live evidence: a fix's before/after figures, and functions watched on request. */
export const EVIDENCE = 'livefix/evidence';
export const WATCH = 'livefix/watch';
/** The running source of every definition the files do not say yet (`livefix persist`). */
export const RUNNING_SOURCES = 'livefix/runningSources';

export const APPLIED_EVENT = 'livefix/applied';
/** A canary's verdict (passed, rolledBack, inconclusive, failed): body `CanaryVerdict`. */
export const CANARY_EVENT = 'livefix/canary';
/** LSP notification: the client forwards each `livefix/applied` event body to the server. */
export const GENERATION_APPLIED_NOTIFICATION = 'livefix/generationApplied';

/** Client-side commands the language server puts in its code actions. */
export const APPLY_DEFINITION_COMMAND = 'livefix.applyDefinition';
export const RELOAD_MODULE_COMMAND = 'livefix.reloadModule';
/** Served by the language server itself (workspace/executeCommand). */
export const PERSIST_COMMAND = 'livefix.persist';

export type ApprovalPolicy = 'never' | 'risky' | 'always';
export const APPROVAL_POLICIES: readonly ApprovalPolicy[] = ['never', 'risky', 'always'];

// -- request arguments -----------------------------------------------------------

export interface ChangeArgs {
  source: string;
  module?: string;
  path?: string;
  qualname?: string;
  /** 1-based line of the definition in the file (its first decorator). */
  line?: number;
}

/**
 * Per class (qualname in a changed module, or "module:qualname"): attribute defaults set
 * where a live instance lacks them, or the source of `def migrate(obj): ...`.
 */
export type Migrations = Record<string, Record<string, unknown> | string>;

/** Judge the new code for `window` seconds; roll back by itself when it is worse. */
export interface CanaryArgs {
  /** Seconds of old-code traffic counted before the commit. */
  before?: number;
  /** Default 30. */
  window?: number;
  /** 0..1 */
  maxErrorRate?: number;
  maxP99Ms?: number;
  /** Calls of the new code before any verdict (default 20). */
  minCalls?: number;
  /** New p99 / old p99 allowed (default 1.5). */
  maxSlowdown?: number;
  /** Judge against the old code's figures too (default true). */
  compare?: boolean;
}

export interface ApplyArguments {
  changes: ChangeArgs[];
  verify?: string;
  dryRun?: boolean;
  approved?: boolean;
  migrate?: Migrations;
  canary?: CanaryArgs;
}

export interface EvidenceArguments {
  /** Default: the newest watched generation. */
  generation?: number;
}

export interface WatchArguments {
  /** "module:qualname"; none: just report what is watched. */
  targets?: string[];
  /** Unwatch the targets (all when none are named). */
  stop?: boolean;
}

export interface RollbackArguments {
  to?: number;
  approved?: boolean;
}

export interface CaptureFramesArguments {
  threadIds?: number[];
  maxFrames?: number;
  locals?: boolean;
}

export interface ReloadArguments {
  modules?: string[];
  package?: string;
  verify?: string;
  approved?: boolean;
  dryRun?: boolean;
  migrate?: Migrations;
  canary?: CanaryArgs;
}

export interface StatusArguments {
  modules?: string[];
  includeLibraries?: boolean;
}

// -- response bodies ---------------------------------------------------------------

export type ChangeKind = 'replaced' | 'added' | 'removed';

export interface AppliedDefinition {
  module: string;
  qualname: string;
  kind: ChangeKind;
  signatureChanged?: boolean;
}

export interface ImpactThread {
  id: number;
  name: string;
  qualnames: string[];
}

export interface Impact {
  threads: ImpactThread[];
  signatureChanges: string[];
  removals: string[];
}

export interface VerifyOutcome {
  check: string;
  passed: boolean;
  error?: string;
}

export interface RunningSource {
  module: string;
  path: string | null;
  qualname: string;
  /** null: the definition was removed (or restored to "as loaded"). */
  source: string | null;
  generation: number;
}

/** Body of apply, reload and rollback responses, and of the `livefix/applied` event. */
export interface ChangeResultBody {
  generation: number;
  applied: AppliedDefinition[];
  impact: Impact;
  report: string;
  dryRun: boolean;
  warnings: string[];
  verify?: VerifyOutcome;
  action?: 'apply' | 'reload' | 'rollback';
  sources?: RunningSource[];
  /** Live instances migrated, per class (apply/reload with `migrate`, or a dataclass's new fields). */
  migrated?: MigratedClass[];
  /** Dry runs: live instances lacking attributes the new code uses. */
  instances?: InstanceGap[];
  /** The new code is watched: until when (epoch seconds), and the canary's terms. */
  evidence?: EvidenceState;
}

export interface EvidenceState {
  state: 'watching';
  window: number;
  until: number;
  canary?: CanaryArgs;
}

/** One code object's traffic while watched. */
export interface Figures {
  calls: number;
  /** Exceptions raised out of it. */
  errors: number;
  /** 0..1 */
  errorRate: number;
  p50Ms: number | null;
  p99Ms: number | null;
  /** null where the interpreter cannot tell (3.10/3.11). */
  errorTypes: Record<string, number> | null;
  since: number;
  /** Calls started, not finished. */
  running: number;
}

export interface FunctionEvidence {
  /** The old code. */
  before: Figures | null;
  /** The new code. */
  after: Figures | null;
}

export type CanaryOutcome = 'passed' | 'rolledBack' | 'inconclusive' | 'failed' | 'rolledBackByUser';

export interface CanaryVerdict {
  outcome: CanaryOutcome;
  generation: number;
  report: string;
  reasons?: string[];
  evidence?: Record<string, FunctionEvidence>;
}

export interface EvidenceBody {
  generation: number;
  state: 'watching' | 'final';
  since: number;
  until: number;
  /** "module.qualname" -> figures. */
  functions: Record<string, FunctionEvidence>;
  /** "shop.price: error rate 0% (was 15%), p99 45 ms (was 200 ms), 1,200 calls" */
  report: string;
  /** CanaryArgs plus `verdict` once there is one. */
  canary?: CanaryArgs & { verdict?: CanaryVerdict };
}

export interface WatchBody {
  /** Per watched function, each version of its code that ran. */
  functions: Record<string, Figures[]>;
}

export interface MigratedClass {
  class: string;
  instances: number;
  attributes: string[];
  migration: 'given' | 'dataclass defaults';
  /** Milliseconds: walking every object before the swap, and the catch-up inside its atomic window. */
  scanMs: number;
  windowMs: number;
}

export interface InstanceGap {
  module: string;
  qualname: string;
  instances: number;
  /** attribute -> live instances lacking it */
  lacking: Record<string, number>;
}

export type GenerationStatus = 'active' | 'rolledBack';

export interface GenerationInfo {
  generation: number;
  /** Seconds since the epoch. */
  time: number;
  action: 'apply' | 'reload';
  changes: AppliedDefinition[];
  status: GenerationStatus;
  verify?: string;
  rolledBackAt?: number;
  /** While watched, and frozen after. */
  evidence?: EvidenceBody;
  /** Modules it changed that executed again since (importlib.reload): they run their file. */
  reimported?: string[];
}

export interface PrunedHistory {
  /** Rolled-back generations dropped from the history so far, the oldest and newest of them. */
  count: number;
  first: number;
  last: number;
  /** How many rolled-back generations are kept (the active chain always is). */
  limit: number;
  reason: string;
}

export interface HistoryBody {
  /** The generation now running (0: as loaded). */
  generation: number;
  generations: GenerationInfo[];
  pruned?: PrunedHistory;
}

export interface FrameInfo {
  name: string;
  qualname: string;
  module: string | null;
  path: string;
  line: number;
  locals?: Record<string, string>;
}

export interface ThreadFrames {
  id: number;
  name: string;
  frames: FrameInfo[];
  /** The thread serving this request. */
  livefix?: boolean;
}

export interface CaptureFramesBody {
  threads: ThreadFrames[];
}

export interface ModuleStatus {
  name: string;
  path: string;
  changed: string[];
  added: string[];
  removed: string[];
  /** Definitions running the file's code at other lines (livefix arrived after the edit). */
  moved?: string[];
  /** Why a module is listed when no definition differs. */
  note?: string;
  /** "derived": livefix did not see the import; definitions were checked, module statements cannot be. */
  baseline?: 'derived';
}

/**
 * A definition an active generation changed (not from its file) that its file does not have
 * as it runs: absent, different, or not known (`fileError`).
 */
export interface UnpersistedDefinition {
  /** The newest active generation that changed it. */
  generation: number;
  module: string;
  qualname: string;
  /** The module's file, as the process names it. */
  path: string | null;
  /** The generation removed it and the file still defines it. */
  removed?: boolean;
  /** The file cannot be read or does not parse. */
  fileError?: string;
  /** The file's version was edited since the fix: `livefix persist` refuses to overwrite it. */
  editedInFile?: boolean;
}

export interface UnpersistedSource extends UnpersistedDefinition {
  /** The running definition, dedented, decorators included (null: removed). */
  source: string | null;
}

export interface StatusBody {
  generation: number;
  modules: ModuleStatus[];
  /** What runs that the files do not say yet (`livefix persist` writes it), oldest first. */
  unpersisted?: UnpersistedDefinition[];
}

export interface RunningSourcesArguments {
  /** Default: every module. */
  modules?: string[];
}

/** Body of `livefix/runningSources`: one entry per running text (a property's getter and setter are two). */
export interface RunningSourcesBody {
  generation: number;
  sources: UnpersistedSource[];
}

/** `body.livefix` of a failed response: a LivefixError as a dict (kind, message, details). */
export interface ErrorBody {
  kind: string;
  message: string;
  reasons?: string[];
  impact?: Impact;
  applied?: AppliedDefinition[];
  report?: string;
  /** Not sent by livefix today (the extension asks a dry run for them); read when present. */
  instances?: InstanceGap[];
  [detail: string]: unknown;
}

// -- the LSP client commands' arguments (see docs/protocol.md) ---------------------

export interface ApplyDefinitionCommandArgs {
  uri: string;
  path: string;
  module: string;
  qualname: string;
  source: string;
  range?: unknown;
  /** 1-based first line, when the server sends it. */
  line?: number;
}

export interface ReloadModuleCommandArgs {
  uri: string;
  path: string;
  module: string;
}

export interface PersistCommandArgs {
  uri: string;
  qualname: string;
  source: string;
}

/** The launch/attach `livefix` option object. */
export interface LivefixOptions {
  approval?: ApprovalPolicy;
  auditLog?: string;
}
