// TypeScript shapes of proto/mana.proto as @grpc/proto-loader decodes them
// (keepCase false, longs as Number, defaults on, oneofs on). Keep in step with the .proto.

export interface ProcInfo {
  procId: number;
  pid: number;
  host: string;
  command: string;
  restarted: boolean;
  generation: number;
  connected: boolean;
  state: string;
  agentId: string;
  exitStatus: number;
  /** an MPI launcher: tracked for exit/kill, never checkpointed */
  launcher: boolean;
  /** MPI jobs: the rank count (a rank's HELLO, or the launcher's -n), 0 = unknown */
  mpiSize: number;
}

export interface Register {
  host: string;
  agentId: string;
  procs: ProcInfo[];
  jobId: string;
  command: string;
  compress: number;
  restartTotal: number;
  restartGeneration: number;
  /** procIds of the manifest being restarted (the barrier waits for exactly these). */
  restartProcIds: number[];
  /** set by the agent of an MPI job's launcher */
  mpi?: MpiJob | null;
}
export interface MpiJob { flavour: string; size: number; launcherArgv: string[] }
export interface AllocProcIds { requestId: number; count: number; launcher?: boolean }
export interface ProcUpdate { proc: ProcInfo }
/** attempt: the checkpoint attempt this answers (echoed from Suspend/Write/Resume). */
export interface Suspended { procId: number; generation: number; error: string; attempt: string }
export interface Progress { procId: number; generation: number; rawDone: number; storedDone: number; rawTotal: number; attempt: string }
export interface Written {
  procId: number;
  generation: number;
  error: string;
  rawBytes: number;
  storedBytes: number;
  fileSize: number;
  millis: number;
  attempt: string;
}
export interface Resumed { procId: number; generation: number; attempt: string }
export interface AgentError { procId: number; message: string }
export interface Exited { procId: number; status: number; signal: string }

/** Exactly one member is set; `event` names it when decoded. */
export interface AgentEvent {
  event?: keyof AgentEventBody;
  register?: Register | null;
  allocProcIds?: AllocProcIds | null;
  procUpdate?: ProcUpdate | null;
  suspended?: Suspended | null;
  progress?: Progress | null;
  written?: Written | null;
  resumed?: Resumed | null;
  error?: AgentError | null;
  exited?: Exited | null;
}
export interface AgentEventBody {
  register: Register;
  allocProcIds: AllocProcIds;
  procUpdate: ProcUpdate;
  suspended: Suspended;
  progress: Progress;
  written: Written;
  resumed: Resumed;
  error: AgentError;
  exited: Exited;
}

export interface Registered { jobId: string; ckptDir: string }
export interface ProcIdsAllocated { requestId: number; procIds: number[] }
export interface Suspend { generation: number; procIds: number[]; attempt: string }
export interface WriteTarget { procId: number; path: string; parent?: string }
export interface Write { generation: number; compress: number; targets: WriteTarget[]; attempt: string }
export interface Resume { generation: number; procIds: number[]; attempt: string }
export interface KillProcs { procIds: number[]; signal: string }
export interface Reject { message: string }

export interface AgentCommand {
  command?: keyof AgentCommandBody;
  registered?: Registered | null;
  procIdsAllocated?: ProcIdsAllocated | null;
  suspend?: Suspend | null;
  write?: Write | null;
  resume?: Resume | null;
  kill?: KillProcs | null;
  reject?: Reject | null;
}
export interface AgentCommandBody {
  registered: Registered;
  procIdsAllocated: ProcIdsAllocated;
  suspend: Suspend;
  write: Write;
  resume: Resume;
  kill: KillProcs;
  reject: Reject;
}

export type Empty = Record<string, never>;

export interface StatusReply {
  jobId: string;
  state: string;
  numProcs: number;
  numAgents: number;
  lastGeneration: number;
  lastGenerationDir: string;
  ckptDir: string;
  intervalSecs: number;
  host: string;
  port: number;
  pid: number;
  version: string;
  lastError: string;
  uptimeMs: number;
  command: string;
  checkpointInProgress: boolean;
  checkpointGeneration: number;
  progressRawDone: number;
  progressRawTotal: number;
  procsWritten: number;
  procsInCheckpoint: number;
  checkpointElapsedMs: number;
  /** processes suspended in the checkpoint in progress (MPI ranks: drained and suspended) */
  procsSuspended: number;
  /** the MPI job's lower half ("mpich", "openmpi"), "" for plain processes */
  mpiFlavour: string;
}
export interface ListReply { procs: ProcInfo[] }
export interface CheckpointRequest { blocking: boolean; killAfter: boolean }
export interface CheckpointReply {
  ok: boolean;
  error: string;
  generation: number;
  dir: string;
  bytes: number;
  millis: number;
  numProcs: number;
}
export interface SetIntervalRequest { intervalSecs: number }
export interface SetIntervalReply { intervalSecs: number }
export interface KillReply { numProcs: number }

export function procInfo(p: Partial<ProcInfo> & { procId: number }): ProcInfo {
  return {
    pid: 0,
    host: "",
    command: "",
    restarted: false,
    generation: 0,
    connected: false,
    state: "",
    agentId: "",
    exitStatus: 0,
    launcher: false,
    mpiSize: 0,
    ...p,
  };
}
