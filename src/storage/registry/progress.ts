// Progress of a pull or push, as docker's JSON messages carry it; each front door renders it in its own dialect.

/** One line of progress: a status, optionally for one layer (id), with bytes. */
export interface ProgressMessage {
  status: string;
  id?: string;
  current?: number;
  total?: number;
  /** The push result docker sends as aux: {Tag, Digest, Size}. */
  aux?: Record<string, unknown>;
}

export type ProgressSink = (m: ProgressMessage) => void;
