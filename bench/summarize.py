#!/usr/bin/env python3
"""Summarise a bench/run.sh output directory as markdown (stdout).

Usage: bench/summarize.py OUTDIR
"""
import glob
import json
import os
import re
import statistics
import sys

out = sys.argv[1]


def load(path):
    with open(path) as f:
        return json.load(f)


def read(path, default=""):
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        return default


machine = dict(line.split("=", 1) for line in read(os.path.join(out, "machine.txt")).splitlines() if "=" in line)
print("## Run of %s\n" % machine.get("date", "?"))
print("| | |\n|---|---|")
for k in ["nproc", "cpu", "mem", "kernel", "go", "fs", "commit", "records", "runs"]:
    print("| %s | %s |" % (k, machine.get(k, "?")))
print()

# Physical limits.
print("### Physical limits (same run)\n")
fio = load(os.path.join(out, "fio.json"))
w = fio["jobs"][0]["write"]
print("- fio sequential write (%s): **%.0f MB/s** (%.0f IOPS of 1 MiB)  \n  `%s`"
      % (read(os.path.join(out, "fio.mode")), w["bw_bytes"] / 1e6, w["iops"], read(os.path.join(out, "fio.cmd"))))
fb = os.path.join(out, "fio-buffered.json")
if os.path.exists(fb):
    wb = load(fb)["jobs"][0]["write"]
    print("- fio sequential write through the page cache with a final fsync (the broker's write path): **%.0f MB/s**"
          % (wb["bw_bytes"] / 1e6))
ip = load(os.path.join(out, "iperf3.json"))
bps = ip["end"]["sum_received"]["bits_per_second"]
print("- iperf3 loopback TCP, 1 stream, 5 s: **%.1f Gbit/s = %.0f MB/s**  \n  `iperf3 -s -1 -p PORT` + `iperf3 -c 127.0.0.1 -p PORT -t 5`"
      % (bps / 1e9, bps / 8 / 1e6))
print()

clk = os.sysconf("SC_CLK_TCK")
runs = {}  # (target, phase, partitions) -> list of (rep, phase dict, cpu seconds or None)
for path in glob.glob(os.path.join(out, "*.json")):
    m = re.match(r"(tiercel|kfake|kfakeproc)-(produce|consume)-p(\d+)-r(\d+)\.json$", os.path.basename(path))
    if not m:
        continue
    target, phase, parts, rep = m.group(1), m.group(2), int(m.group(3)), int(m.group(4))
    res = load(path)
    ph = next(p for p in res["phases"] if p["name"] == phase)
    # CPU seconds: the broker's, the bench process's, and everyone else's
    # (other load on this shared machine) over the run.
    cpu = {}
    c = read(path[:-5] + ".cpu", None)
    t = read(path[:-5] + ".time", None)
    if c and t:
        broker_ticks, machine_ticks = map(int, c.split())
        wall, user, sys_ = map(float, t.split()[-3:])
        cpu = {"broker": broker_ticks / clk, "client": user + sys_, "wall": wall}
        cpu["other"] = max(machine_ticks / clk - cpu["broker"] - cpu["client"], 0)
    # Broker-side time per request (tiercel's metrics: request read to
    # response written), from the counters before and after the run.
    api = "Produce" if phase == "produce" else "Fetch"
    r0, r1 = read(path[:-5] + ".req0", None), read(path[:-5] + ".req1", None)
    if r0 is not None and r1:
        def parse(text):
            return {l.split()[0]: (float(l.split()[1]), float(l.split()[2])) for l in text.splitlines() if len(l.split()) == 3}
        a0, a1 = parse(r0).get(api, (0.0, 0.0)), parse(r1).get(api)
        if a1 and a1[1] > a0[1]:
            cpu["broker_req_ms"] = 1e3 * (a1[0] - a0[0]) / (a1[1] - a0[1])
    runs.setdefault((target, phase, parts), []).append((rep, ph, cpu))


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def mmm(xs, fmt="%.0f"):
    if not xs:
        return "-"
    return (fmt + " (" + fmt + "–" + fmt + ")") % (med(xs), min(xs), max(xs))


partitions = sorted({k[2] for k in runs})


def ratio_cells(t, k):
    tm = [r[1]["mb_per_s"] for r in t]
    km = [r[1]["mb_per_s"] for r in k]
    if not tm or not km:
        return "-", "-", float("nan")
    ratio = med(tm) / med(km)
    kby = {r[0]: r[1]["mb_per_s"] for r in k}
    paired = [r[1]["mb_per_s"] / kby[r[0]] for r in t if r[0] in kby]
    return "%.2f" % ratio, mmm(paired, "%.2f"), ratio


print("### Throughput: median (min–max) of %s runs, MB/s (1 MB = 1e6 bytes of key+value payload)\n"
      % machine.get("runs", "?"))
print("kfake = in the bench process (`--kfake`, the issue's peer); kfake-proc = kfake in a process of its own "
      "(`bench serve-kfake`), driven exactly like tiercel. Ratios: of the medians, and per run (runs are interleaved, "
      "so run i of each target saw similar machine conditions).\n")
print("| partitions | load | tiercel | kfake | kfake-proc | tiercel/kfake | per run | tiercel/kfake-proc | per run | ≥ 0.9× kfake |")
print("|---:|---|---:|---:|---:|---:|---:|---:|---:|:---:|")
for p in partitions:
    for phase in ["produce", "consume"]:
        t, k, kp = [sorted(runs.get((x, phase, p), []), key=lambda r: r[0]) for x in ("tiercel", "kfake", "kfakeproc")]
        r1, pr1, ratio = ratio_cells(t, k)
        r2, pr2, _ = ratio_cells(t, kp)
        print("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            p, phase,
            mmm([r[1]["mb_per_s"] for r in t]), mmm([r[1]["mb_per_s"] for r in k]),
            mmm([r[1]["mb_per_s"] for r in kp]), r1, pr1, r2, pr2,
            "yes" if ratio >= 0.9 else "**no**"))
print()

print("### Records/s and produce latency (medians)\n")
print("Produce latency is from the Produce call, including the wait for buffer space, to the ack; with an unlimited rate it is mostly queueing in the client's 50000-record buffer.\n")
print("CPU columns: CPU-seconds per GB moved (1 GB = 1e9 payload bytes), for the broker process (tiercel, or kfake-proc's kfake) and for the bench process "
      "(which for kfake also holds the broker; for kfake consume it includes the prefill), over the whole bench process "
      "run (client start-up included). 'other load' is the machine's remaining busy CPU during the run, in cores: "
      "other processes on this shared 2-core machine.\n")
print("Requests: produce or fetch requests per run. 'ms/request' is the client's cycle (run seconds / requests) and, "
      "for tiercel, the broker's own time per request from its metrics (request read to response written).\n")
print("| partitions | load | target | records/s | rec/batch | requests | ms/request client / broker | p50 ms | p99 ms | p99.9 ms | max ms | broker CPU s/GB | bench CPU s/GB | other load, cores |")
print("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for p in partitions:
    for phase in ["produce", "consume"]:
        for target in ["tiercel", "kfakeproc", "kfake"]:
            rs = runs.get((target, phase, p), [])
            if not rs:
                continue
            recs = [r[1]["records_per_s"] for r in rs]
            per_batch = [r[1]["records"] / r[1]["batches"] for r in rs if r[1]["batches"]]
            lat = [r[1].get("latency_ms") for r in rs if r[1].get("latency_ms")]
            gb = lambda r: r[1]["bytes"] / 1e9
            bcpu = [r[2]["broker"] / gb(r) for r in rs if r[2] and r[1]["bytes"]]
            ccpu = [r[2]["client"] / gb(r) for r in rs if r[2] and r[1]["bytes"]]
            other = [r[2]["other"] / r[2]["wall"] for r in rs if r[2] and r[2]["wall"] > 0]
            reqs = [r[1]["requests"] for r in rs if r[1]["requests"]]
            cycle = [1e3 * r[1]["seconds"] / r[1]["requests"] for r in rs if r[1]["requests"]]
            breq = [r[2]["broker_req_ms"] for r in rs if r[2] and "broker_req_ms" in r[2]]
            cols = ["%.0f" % med(recs), "%.0f" % med(per_batch) if per_batch else "-", "%.0f" % med(reqs) if reqs else "-",
                    ("%.2f" % med(cycle) if cycle else "-") + " / " + ("%.2f" % med(breq) if breq else "-")]
            for q in ["p50", "p99", "p999", "max"]:
                cols.append("%.1f" % med([l[q] for l in lat]) if lat else "-")
            cols.append("%.2f" % med(bcpu) if target != "kfake" and bcpu else "(in bench)")
            cols.append("%.2f" % med(ccpu) if ccpu else "-")
            cols.append(mmm(other, "%.2f"))
            print("| %d | %s | %s | %s |" % (p, phase, target, " | ".join(cols)))
print()

def perf_lines(path, n):
    return [l.rstrip() for l in read(path).splitlines() if re.match(r"\s*\d+\.\d+%", l)][:n]


profiles = sorted(p for p in glob.glob(os.path.join(out, "perf-*.self.txt")) if "system-" not in p)
if profiles:
    print("### Broker CPU profile: %s, self time, top entries\n" % read(os.path.join(out, "perf.cmd")).splitlines()[0])
    for path in profiles:
        name = os.path.basename(path)[len("perf-"):-len(".self.txt")]
        print("`%s` (broker only):\n" % name)
        print("```")
        print("\n".join(perf_lines(path, 20)))
        print("```\n")
        children = os.path.join(out, "perf-%s.children.txt" % name)
        if os.path.exists(children):
            print("<details><summary>inclusive (children) view</summary>\n")
            print("```")
            print("\n".join(perf_lines(children, 40)))
            print("```\n</details>\n")

systems = sorted(glob.glob(os.path.join(out, "perf-system-*.bypid.txt")))
if systems:
    broker = read(os.path.join(out, "system-broker.pid"))
    print("### Whole-machine CPU split (perf record -a): where the 2 cores went\n")
    print("The broker is pid %s; the other busy `tiercel` pid is the bench process (with kfake inside it for kfake runs). "
          "The kfake consume profile includes its prefill.\n" % broker)
    for path in systems:
        name = os.path.basename(path)[len("perf-system-"):-len(".bypid.txt")]
        print("`%s`, samples per process (swapper = idle):\n" % name)
        print("```")
        print("\n".join(perf_lines(path, 6)))
        print("```\n")
        client = path.replace(".bypid.txt", ".client.txt")
        if os.path.exists(client):
            print("<details><summary>bench process, self time</summary>\n")
            print("```")
            print("\n".join(perf_lines(client, 15)))
            print("```\n</details>\n")
