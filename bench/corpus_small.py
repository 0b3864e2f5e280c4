"""Time + peak memory (summed PSS of the process tree, sampled every 0.2 s) of a small NB-101 corpus build.

Run: ``python bench/corpus_small.py LABEL CACHE_DIR OUT_JSON [extra corpus options]`` (psutil needed);
CACHE_DIR becomes ARCH_GPT_CACHE (a fresh folder = a first run on a new machine). The rows of
bench/results/corpus_small.json were made with it (the corpus goes to a temporary folder)."""
import json, os, platform, subprocess, sys, tempfile, time
from pathlib import Path
import psutil

label, cache, out_json, *extra = sys.argv[1:]
out = Path(tempfile.gettempdir()) / f"arch-gpt-corpus-small-{label}"
cmd = [sys.executable, "-m", "arch_gpt.cli", "corpus", "nasbench101", "--out", str(out), "--max-archs", "50",
       "--overwrite", "--no-progress", *extra]
env = dict(os.environ, ARCH_GPT_CACHE=cache, OMP_NUM_THREADS="1")
cache_before = sorted(p.name for p in Path(cache).glob("*")) if Path(cache).exists() else []
load_before = os.getloadavg()
start = time.perf_counter()
proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
watched, peak_pss, peak_rss, loads = psutil.Process(proc.pid), 0, 0, []
while proc.poll() is None:
    rss = pss = 0
    for p in [watched] + watched.children(recursive=True):
        try:
            info = p.memory_full_info(); rss += info.rss; pss += info.pss
        except psutil.Error:
            pass
    peak_pss, peak_rss = max(peak_pss, pss), max(peak_rss, rss)
    loads.append(os.getloadavg()[0])
    time.sleep(0.2)
wall = time.perf_counter() - start
stdout, stderr = proc.communicate()
cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
            if l.startswith("model name")), platform.processor())
summary = json.loads((out / "summary.json").read_text()) if proc.returncode == 0 else {}
result = {"label": label, "returncode": proc.returncode,
          "command": "ARCH_GPT_CACHE=" + cache + " " + " ".join(["arch-gpt"] + cmd[3:]),
          "cache_files_before": cache_before,
          "wall_seconds": round(wall, 1), "peak_pss_mb_process_tree": round(peak_pss / 2**20),
          "peak_rss_mb_process_tree_summed": round(peak_rss / 2**20),
          "summary": {k: summary.get(k) for k in ("architectures", "enumerated_cells", "vocab_size", "vocab_counted",
                                                  "build_seconds", "cell_sampling")},
          "machine": {"cpu": cpu, "logical_cpus": os.cpu_count(), "python": platform.python_version(),
                      "load_avg_1min_before": round(load_before[0], 2),
                      "load_avg_1min_mean_during": round(sum(loads) / max(len(loads), 1), 2),
                      "load_avg_1min_max_during": round(max(loads, default=0), 2)},
          "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
          "stderr_tail": stderr[-1500:]}
Path(out_json).write_text(json.dumps(result, indent=1) + "\n")
print(json.dumps(result, indent=1))
