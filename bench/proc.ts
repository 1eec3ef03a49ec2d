/**
 * A process's CPU time and resident memory from /proc (Linux), for the benchmarks' figures. A process that is
 * gone reads as zeros.
 */
import { readFileSync } from 'node:fs';

/** CPU ticks (utime + stime, USER_HZ = 100 on Linux) and RSS in MiB. */
export function procStat(pid: number): { cpuTicks: number; rssMiB: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpuTicks = Number(fields[11]) + Number(fields[12]);
    const rss = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return { cpuTicks, rssMiB: Number(rss?.[1] ?? 0) / 1024 };
  } catch {
    return { cpuTicks: 0, rssMiB: 0 };
  }
}
