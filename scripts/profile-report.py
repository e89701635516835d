#!/usr/bin/env python3
"""The tables of scripts/profile-bench from its raw files (docs/performance.md).

  profile-report.py counts OUT WORKLOAD ADMIN_CONNINFO
      per step: the difference of the long and the short run divided by the difference of
      their steps (rows inserted into spine.steps: one per step of either workload)
  profile-report.py statements OUT WORKLOAD
      the statements of the log of a short run, counted per step, and one workflow's sequence
"""
import re
import subprocess
import sys


def kv(path):
    out = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2:
                try:
                    out[parts[0]] = int(parts[1])
                except ValueError:
                    out[parts[0]] = parts[1]
    return out


def delta(before, after):
    return {k: after[k] - before.get(k, 0) for k in after if isinstance(after[k], int)}


def perfstat(path):
    out = {}
    with open(path) as f:
        for line in f:
            parts = line.strip().split(",")
            if len(parts) > 2 and parts[0].isdigit():
                out[parts[2].split(":")[-1].replace("sys_enter_", "")] = int(parts[0])
    return out


RE_WAL = re.compile(
    r"^(\S+)\s+(\d+) \(\s*[\d.]+\)\s+(\d+) \(\s*[\d.]+\)\s+(\d+) \(\s*[\d.]+\)\s+(\d+)")


def waldump(path):
    """{record type: (count, record bytes, fpi bytes, combined bytes)}"""
    out = {}
    with open(path) as f:
        for line in f:
            m = RE_WAL.match(line)
            if m and m.group(1) != "Total":
                out[m.group(1)] = tuple(int(m.group(i)) for i in range(2, 6))
    return out


def run_figures(out, tag):
    d = delta(kv(f"{out}/{tag}.before"), kv(f"{out}/{tag}.after"))
    proc = kv(f"{out}/{tag}.proc")
    with open(f"{out}/{tag}.backends") as f:
        d["backend_ticks"] = int(f.read().split()[1])
    return d, proc, perfstat(f"{out}/{tag}.perfstat"), waldump(f"{out}/{tag}.waldump")


def indexes(admin):
    q = ("SELECT c.relname, count(i.indexrelid) FROM pg_class c JOIN pg_namespace n ON"
         " n.oid = c.relnamespace LEFT JOIN pg_index i ON i.indrelid = c.oid WHERE"
         " n.nspname = 'spine' AND c.relkind = 'r' GROUP BY 1")
    r = subprocess.run(["psql", "-X", "-A", "-t", "-F", " ", admin, "-c", q],
                       capture_output=True, text=True, check=True)
    return {a: int(b) for a, b in (l.split() for l in r.stdout.split("\n") if l.strip())}


def counts(out, workload, admin):
    s = run_figures(out, f"counts-{workload}-short")
    l = run_figures(out, f"counts-{workload}-long")
    steps_s, steps_l = s[0]["steps.ins"], l[0]["steps.ins"]
    n = steps_l - steps_s
    print(f"# {workload}: per step = (long run - short run) / {n} steps"
          f" (short {steps_s} steps, long {steps_l} steps)")
    print(f"{'figure':42} {'short':>12} {'long':>12} {'per step':>10}")

    def row(name, a, b, scale=1.0):
        print(f"{name:42} {a:>12} {b:>12} {(b - a) / n * scale:>10.2f}")

    print("## the worker (spine-bench)")
    for k in ["cpu_user_us", "cpu_sys_us"]:
        row(k, s[1][k], l[1][k])
    for k in ["malloc", "calloc", "realloc", "free", "memalign", "alloc_bytes"]:
        row(k, s[1][k], l[1][k])
    row("heap calls (malloc+calloc+realloc+memalign)",
        sum(s[1][k] for k in ["malloc", "calloc", "realloc", "memalign"]),
        sum(l[1][k] for k in ["malloc", "calloc", "realloc", "memalign"]))
    for k in ["send_calls", "send_bytes", "recv_calls", "recv_bytes", "wchar", "rchar"]:
        row(k, s[1][k], l[1][k])
    for k in s[2]:
        row("syscalls " + k, s[2][k], l[2].get(k, 0))
    print("## the database")
    row("cpu_us of the bench's backends", s[0]["backend_ticks"] * 10000,
        l[0]["backend_ticks"] * 10000)
    row("cpu_us (cluster, all processes: autovacuum too)", s[0]["db_ticks"] * 10000,
        l[0]["db_ticks"] * 10000)
    for k in ["commits", "rollbacks", "wal_records", "wal_fpi", "wal_bytes"]:
        row(k, s[0][k], l[0][k])
    idx = indexes(admin)
    for k in sorted(l[0]):
        if "." in k and (l[0][k] or s[0].get(k)):
            t = k.split(".")[0]
            row(f"{k} (table has {idx.get(t, '?')} indexes)", s[0].get(k, 0), l[0][k])
    print("## WAL records by type (pg_waldump --stats=record): count and bytes per step")
    print(f"{'record':42} {'n/step':>10} {'rec B/step':>11} {'fpi B/step':>11}"
          f" {'all B/step':>11}")
    keys = sorted(set(s[3]) | set(l[3]), key=lambda k: -(l[3].get(k, (0, 0, 0, 0))[3]))
    tot = [0.0, 0.0, 0.0, 0.0]
    for k in keys:
        a, b = s[3].get(k, (0, 0, 0, 0)), l[3].get(k, (0, 0, 0, 0))
        v = [(b[i] - a[i]) / n for i in range(4)]
        tot = [tot[i] + v[i] for i in range(4)]
        if abs(v[3]) >= 0.5 or abs(v[0]) >= 0.01:
            print(f"{k:42} {v[0]:>10.3f} {v[1]:>11.1f} {v[2]:>11.1f} {v[3]:>11.1f}")
    print(f"{'Total':42} {tot[0]:>10.3f} {tot[1]:>11.1f} {tot[2]:>11.1f} {tot[3]:>11.1f}")


RE_LOG = re.compile(r"^\S+ \S+ \S+ \[(\d+)\] (\w+):\s+(.*)$")


def statements(out, workload):
    d = delta(kv(f"{out}/statements-{workload}.before"), kv(f"{out}/statements-{workload}.after"))
    steps = d["steps.ins"]
    entries = []  # [pid, kind, text, params]
    with open(f"{out}/statements-{workload}.log", errors="replace") as f:
        for line in f:
            m = RE_LOG.match(line)
            if not m:
                if entries and line.startswith("\t"):
                    entries[-1][2] += " " + line.strip()
                continue
            pid, level, text = m.groups()
            if level == "LOG" and (text.startswith("execute ") or text.startswith("statement: ")):
                entries.append([pid, level, text, ""])
            elif level == "DETAIL" and text.startswith("parameters:") and entries:
                entries[-1][3] = text
    names = {}
    for e in entries:
        t = e[2]
        if t.startswith("execute "):
            name = t.split(":")[0][len("execute "):]
            if name.startswith("spine_x"):  # an intent's statement: name it by its table
                m = re.search(r"INSERT INTO (\S+)", t)
                name += f" ({m.group(1) if m else t[len('execute spine_x0: '):][:40]})"
        else:
            name = t[len("statement: "):][:60]
        e.append(name)
        names[name] = names.get(name, 0) + 1
    print(f"# {workload}: statements logged (log_statement = all, role spine) during a run of"
          f" {steps} steps")
    print(f"{'statement':70} {'count':>8} {'per step':>9}")
    for name, c in sorted(names.items(), key=lambda x: -x[1]):
        print(f"{name:70} {c:>8} {c / steps:>9.3f}")
    total = sum(names.values())
    print(f"{'all':70} {total:>8} {total / steps:>9.3f}")
    # one workflow, from its insert to its end
    first = next((e for e in entries if e[4] == "spine_WF_INSERT" and e[3]), None)
    if not first:
        return
    wf = re.search(r"\$1 = '([^']+)'", first[3]).group(1)
    print(f"\n# the statements of workflow {wf} (its id among their parameters), in order")
    for e in entries:
        if f"'{wf}'" in e[3]:
            print(f"  {e[4]:40} {e[3][len('parameters: '):][:150]}")


def rawpg(out, workload, steps):
    d = delta(kv(f"{out}/rawpg-{workload}.before"), kv(f"{out}/rawpg-{workload}.after"))
    n = steps
    print(f"# raw-pg group commit ({workload}): {n} steps; per step")
    print(f"db cpu_us (cluster, all processes) {d['db_ticks'] * 10000 / n:.2f}")
    for k in ["commits", "wal_records", "wal_fpi", "wal_bytes"]:
        print(f"{k} {d[k] / n:.3f}")
    print(f"{'record':42} {'n/step':>10} {'rec B/step':>11} {'fpi B/step':>11}"
          f" {'all B/step':>11}")
    wal = waldump(f"{out}/rawpg-{workload}.waldump")
    for k, v in sorted(wal.items(), key=lambda x: -x[1][3]):
        if v[3] / n >= 0.5:
            print(f"{k:42} {v[0] / n:>10.3f} {v[1] / n:>11.1f} {v[2] / n:>11.1f} {v[3] / n:>11.1f}")


if __name__ == "__main__":
    if sys.argv[1] == "rawpg":
        rawpg(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif sys.argv[1] == "counts":
        counts(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        statements(sys.argv[2], sys.argv[3])
