/**
 * What a server process tree costs, read from /proc: peak resident memory and CPU time.
 *
 * A server is one or more root PIDs (the process we started) and every descendant of them:
 * RabbitMQ's start script, beam.smp and its port programs; epmd; the Skyrocket broker. The tree is
 * listed again at every reading, so children started later are counted too.
 *
 *   /proc/<pid>/stat     field 14 utime, 15 stime, 16 cutime, 17 cstime (clock ticks)
 *   /proc/<pid>/status   VmHWM: the peak resident set of that process, in kB
 *   /proc/<pid>/smaps_rollup  Pss: its resident set with each shared page divided among the
 *                        processes that share it, in kB
 *
 * Summing VmHWM over a tree overstates it when processes share pages: Redis forks a child for
 * every AOF rewrite, and each child's VmHWM counts the parent's whole dataset again. So the
 * headline figure is the peak of the tree's summed PSS, sampled while it runs.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';

const clockTicksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

interface Stat {
  pid: number;
  ppid: number;
  comm: string;
  /** utime + stime + cutime + cstime, in clock ticks: cutime/cstime keep the time of reaped children. */
  ticks: number;
}

function readStat(pid: number): Stat | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name is in parentheses and may hold spaces or parentheses itself.
  const close = text.lastIndexOf(')');
  const comm = text.slice(text.indexOf('(') + 1, close);
  const fields = text.slice(close + 2).split(' ');
  // fields[0] is field 3 (state); field n is fields[n - 3].
  const num = (n: number): number => Number(fields[n - 3]);
  return { pid, ppid: num(4), comm, ticks: num(14) + num(15) + num(16) + num(17) };
}

function readHighWaterKiB(pid: number): number | undefined {
  try {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match === null ? undefined : Number(match[1]);
  } catch {
    return undefined;
  }
}

function readPssKiB(pid: number): number | undefined {
  try {
    const match = /^Pss:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return match === null ? undefined : Number(match[1]);
  } catch {
    return undefined;
  }
}

/** The roots and all their live descendants. */
export function processTree(roots: readonly number[]): Stat[] {
  const all: Stat[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat !== undefined) all.push(stat);
  }
  const children = new Map<number, Stat[]>();
  for (const s of all) {
    const list = children.get(s.ppid);
    if (list === undefined) children.set(s.ppid, [s]);
    else list.push(s);
  }
  const byPid = new Map(all.map((s) => [s.pid, s]));
  const out: Stat[] = [];
  const seen = new Set<number>();
  const stack = roots.map((pid) => byPid.get(pid)).filter((s): s is Stat => s !== undefined);
  while (stack.length > 0) {
    const s = stack.pop() as Stat;
    if (seen.has(s.pid)) continue;
    seen.add(s.pid);
    out.push(s);
    stack.push(...(children.get(s.pid) ?? []));
  }
  return out;
}

/**
 * Follows one server's process trees over a run: CPU seconds between two readings, and the peak
 * resident memory of each process (its VmHWM at the last reading that saw it alive), summed.
 */
export class ResourceMeter {
  readonly #roots: readonly number[];
  readonly #exclude: ReadonlySet<string>;
  readonly #peakKiB = new Map<number, { comm: string; kib: number }>();
  /** Ticks last seen per process, so a process that exits keeps what it had used. */
  readonly #ticks = new Map<number, number>();
  /** The largest sum of PSS over the tree seen at one sampling. */
  #peakPssKiB = 0;

  /** `excludeCommands`: processes of the tree with these names are not counted (their children are). */
  constructor(roots: readonly number[], excludeCommands: readonly string[] = []) {
    this.#roots = roots;
    this.#exclude = new Set(excludeCommands);
    this.sample();
  }

  /** Reads the trees now; call it often enough that no process lives and dies unseen. */
  sample(): void {
    let pss = 0;
    for (const s of processTree(this.#roots)) {
      if (this.#exclude.has(s.comm)) continue;
      this.#ticks.set(s.pid, s.ticks);
      const kib = readHighWaterKiB(s.pid);
      if (kib !== undefined) this.#peakKiB.set(s.pid, { comm: s.comm, kib: Math.max(kib, this.#peakKiB.get(s.pid)?.kib ?? 0) });
      pss += readPssKiB(s.pid) ?? 0;
    }
    this.#peakPssKiB = Math.max(this.#peakPssKiB, pss);
  }

  /** CPU seconds used by the trees so far (user + system, including reaped children). */
  cpuSeconds(): number {
    this.sample();
    let ticks = 0;
    for (const t of this.#ticks.values()) ticks += t;
    return ticks / clockTicksPerSecond;
  }

  /**
   * Peak memory, in MiB: `pssMiB`, the largest summed PSS of the tree at one sampling (the
   * headline); `largestProcessMiB`, the largest single process's VmHWM; and every process's VmHWM.
   */
  peakMemory(): { pssMiB: number; largestProcessMiB: number; processes: Array<{ pid: number; comm: string; mib: number }> } {
    this.sample();
    const processes = [...this.#peakKiB.entries()]
      .map(([pid, p]) => ({ pid, comm: p.comm, mib: round(p.kib / 1024) }))
      .sort((a, b) => b.mib - a.mib);
    return { pssMiB: round(this.#peakPssKiB / 1024), largestProcessMiB: processes[0]?.mib ?? 0, processes };
  }
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}
