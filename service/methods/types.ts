/**
 * What an explain method is to the service: its parameter schema (the request contract and the
 * OpenAPI document come from it), how its parameters resolve against a model (defaults, background or
 * baseline rows, the cache context), and the explainer call a worker thread makes. The registry in
 * service/methods/index.ts lists every method; POST /explain, the GET chart URLs, jobs and the CLI
 * all go through it.
 */
import type { z } from 'zod';
import type { CommonOptions, Explanation, Model, Rows } from '../../explainers/types.js';
import type { ServedModel } from '../../models/served.js';
import type { Tokenizer } from '../../models/tokenizer.js';
import type { Limits } from '../schemas/common.js';

/** An explainer's options as a worker receives them: structured-cloneable, without the model's space. */
export type TaskOptions<O> = Omit<O, 'space' | 'signal'>;

/** The options every method takes per call, on top of its planned ones. */
export type CallOptions = Pick<CommonOptions, 'outputs' | 'deadline'>;

/** What the thread that runs a method adds: the model's feature space, the signal, a text model's tokenizer. */
export type WorkerOptions = Pick<CommonOptions, 'space' | 'signal'> & { tokenizer?: Tokenizer };

export interface MethodPlan<O> {
  /** The explainer options resolved from the parameters (without outputs, deadline, space and signal). */
  options: O;
  /** What the answer depends on, hashable: rows replaced by their hash. Goes into cache keys and ids. */
  context: Record<string, unknown>;
  /** The parameters as a person reads them back (rows summarised as "N rows"). */
  display: Record<string, unknown>;
  deadlineMs?: number;
}

/** An estimate of a request's model evaluations, and the factors it is made of (for the message). */
export interface Estimate {
  evaluations: number;
  /** e.g. "12 instances x 2076 coalitions x 100 background rows". */
  terms: string;
}

/** Reads the GET chart URL's query: one value per key (a repeated key is refused). */
export interface QueryReader {
  string(key: string): string | undefined;
  number(key: string): number | undefined;
  /** A number, or the string "auto". */
  numberOrAuto(key: string): number | 'auto' | undefined;
}

export interface ExplainMethodSpec<Name extends string, Schema extends z.ZodType, Options> {
  name: Name;
  /** One line for the API document. */
  summary: string;
  /** The `parameters` object of a request, with its defaults; caps from the config. */
  parameters(limits: Limits): Schema;
  /**
   * Why this method cannot explain model `m` (its kind of input, or gradients / layer access it lacks),
   * as the end of a sentence ("needs input gradients, which ..."); undefined when it can.
   */
  supports(m: ServedModel): string | undefined;
  /** Resolves validated parameters against a model. Throws a ServiceError for what cannot be resolved. */
  plan(m: ServedModel, parameters: z.infer<Schema>): MethodPlan<Options>;
  /** Runs in a worker thread (or inline): the explainer itself. */
  explain(model: Model, rows: Rows, options: Options & CallOptions & WorkerOptions): Promise<Explanation>;
  /**
   * Admission control: an upper estimate of the model rows (evaluations; a gradient row counts as
   * one) the planned request may cost for `instances` rows and `outputs` explained outputs. A
   * request above the per-request budget (MAX_REQUEST_EVALUATIONS) is refused with TOO_EXPENSIVE
   * before any model call; batch jobs are not limited by it. `terms` names the factors for the message.
   */
  estimate(m: ServedModel, options: Options, request: { instances: number; outputs: number }): Estimate;
  /** Rows per chunk of a batch job by default. */
  chunkSize: number;
  /** Query keys of the GET chart URL that are parameters (never feature names), and how they read. */
  queryKeys: readonly string[];
  fromQuery(q: QueryReader): Record<string, unknown>;
}
