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

export const APPLIED_EVENT = 'livefix/applied';
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

export interface ApplyArguments {
  changes: ChangeArgs[];
  verify?: string;
  dryRun?: boolean;
  approved?: boolean;
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

export interface StatusBody {
  generation: number;
  modules: ModuleStatus[];
}

/** `body.livefix` of a failed response: a LivefixError as a dict (kind, message, details). */
export interface ErrorBody {
  kind: string;
  message: string;
  reasons?: string[];
  impact?: Impact;
  applied?: AppliedDefinition[];
  report?: string;
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
